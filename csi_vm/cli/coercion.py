"""Option values a command line gives, checked without importing pydantic.

typer turns each value into its annotated type through a pydantic
TypeAdapter: importing pydantic and building the adapters costs every
command about 60 ms before it does anything, even for values that need no
conversion at all (a string, a default, a choice that matches). Here those
common cases are answered the way the adapter answers them; anything else,
and every value the adapter would reject, goes to typer's own adapter, so
that errors and their messages stay typer's.
"""

from __future__ import annotations

import enum
import pathlib
import re
from typing import Any, get_args, get_origin

#: a value that is not one of the cases answered here
_MISS = object()
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


class LazyRuntimeParam:
    """typer's RuntimeParam for one parameter, built only for a value it must judge."""

    def __init__(self, descriptor: Any, build: Any) -> None:
        self.descriptor = descriptor
        self._build = build
        self._real: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            # as typer's RuntimeParam.coerce answers a missing value, for every type
            return () if param.multiple or param.nargs == -1 else None
        fast = convert(self.descriptor, value, param, ctx)
        if fast is not _MISS:
            return fast
        if self._real is None:
            self._real = self._build(self.descriptor)
        return self._real.coerce(value, param=param, ctx=ctx)

    def __getattr__(self, name: str) -> Any:
        # Anything else typer asks of its runtime parameter: the real one.
        if self._real is None:
            self._real = self._build(self.descriptor)
        return getattr(self._real, name)


def convert(descriptor: Any, value: Any, param: Any, ctx: Any) -> Any:
    """The value typer's adapter gives for ``value``, or _MISS where it must decide."""
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return _MISS
    if (param.multiple or param.nargs == -1) and isinstance(value, str):
        return _MISS  # typer refuses a lone string for a repeatable parameter
    annotation = descriptor.annotation
    if get_origin(annotation) is list:
        (item_type,) = get_args(annotation)
        items = value if isinstance(value, list | tuple) else [value]
        converted = [_leaf(item_type, info, item, param, ctx) for item in items]
        return _MISS if any(item is _MISS for item in converted) else converted
    return _leaf(annotation, info, value, param, ctx)


def _leaf(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    """One value, in the order typer's adapter tries the types."""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _choice(list(annotation), info, value, ctx)
    if annotation is bool:
        return value if type(value) is bool else _MISS
    if annotation is str:
        return value if type(value) is str else _MISS
    if annotation is int or annotation is float:
        return _number(annotation, info, value)
    if annotation is pathlib.Path and info.path_type in (None, pathlib.Path):
        return _path(info, value, param, ctx)
    return _MISS


def _choice(choices: list[Any], info: Any, value: Any, ctx: Any) -> Any:
    from typer._param_types import coerce_cli_choice  # noqa: PLC0415 - typer is loaded by now

    try:
        return coerce_cli_choice(
            value, choices=choices, case_sensitive=info.case_sensitive, ctx=ctx
        )
    except ValueError:
        return _MISS  # the adapter words the error


def _number(kind: type, info: Any, value: Any) -> Any:
    if type(value) is kind:
        number = value
    elif type(value) is str and (_DIGITS if kind is int else _DECIMAL).fullmatch(value):
        number = kind(value)
    else:
        return _MISS
    if info.clamp:
        return _MISS
    if info.min is not None and number < info.min:
        return _MISS
    if info.max is not None and number > info.max:
        return _MISS
    return number


def _path(info: Any, value: Any, param: Any, ctx: Any) -> Any:
    from typer._param_types import coerce_cli_path  # noqa: PLC0415 - typer is loaded by now

    if type(value) is str:
        value = pathlib.Path(value)  # what pydantic's Path validation makes of a string
    elif not isinstance(value, pathlib.Path):
        return _MISS
    # typer's own checks (exists, dir_okay, ...) raise its usage errors themselves.
    return coerce_cli_path(value, info, path_type=pathlib.Path, param=param, ctx=ctx)


def install() -> None:
    """typer's parameters coerce through LazyRuntimeParam from now on."""
    from typer import core  # noqa: PLC0415 - loaded with the command, never at start-up

    if getattr(core, "_csi_vm_lazy", False):
        return
    build = getattr(core, "build_runtime_param")  # noqa: B009 - typer does not export it
    # typer.core calls it by this name when a parameter first meets a value.
    setattr(core, "build_runtime_param", lambda descriptor: LazyRuntimeParam(descriptor, build))  # noqa: B010
    setattr(core, "_csi_vm_lazy", True)  # noqa: B010 - a mark on typer's module
