"""Values checked without pydantic come out exactly as typer's own adapter makes them."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from typer import core
from typer._click import Context
from typer._coercion import build_runtime_param

from csi_vm.cli import coercion, registry

pytestmark = pytest.mark.timeout(120)

#: what a command line hands an option, besides the option's own default
SAMPLES = (
    "",
    "0",
    "1",
    "12",
    "65",
    "007",
    "0.5",
    "007.50",
    "-1",
    "1e3",
    " 3",
    "x",
    "table",
    "json",
    "/tmp",
)


def _params() -> Iterator[tuple[str, Any, Any]]:
    """(path and name, parameter, context) of every typer parameter csi-vm has."""
    for entry in registry.ENTRIES:
        if entry.name == "localdriver":
            continue
        command = registry.load(entry).commands[entry.name]  # type: ignore[attr-defined]
        leaves = getattr(command, "commands", None) or {entry.name: command}
        for name, leaf in leaves.items():
            for param in leaf.params:
                if isinstance(param, core._TyperParameter):
                    yield f"{entry.name} {name} {param.name}", param, Context(leaf)


PARAMS = list(_params())


def _outcome(runtime: Any, param: Any, value: Any, ctx: Any) -> tuple[str, Any]:
    try:
        return "ok", runtime.coerce(value, param=param, ctx=ctx)
    except Exception as err:
        return "error", err.format_message() if hasattr(err, "format_message") else str(err)


@pytest.mark.parametrize(("where", "param", "ctx"), PARAMS, ids=[p[0] for p in PARAMS])
def test_values_come_out_as_the_adapter_makes_them(where: str, param: Any, ctx: Any) -> None:
    answered = 0
    built: list[object] = []

    def build(descriptor: Any) -> Any:
        built.append(descriptor)
        return build_runtime_param(descriptor)

    for value in (None, param.default, *SAMPLES, [*SAMPLES[:3]]):
        before = len(built)
        lazy = coercion.LazyRuntimeParam(param.type_descriptor, build)
        got = _outcome(lazy, param, value, ctx)
        # typer's own, with pydantic
        expected = _outcome(build_runtime_param(param.type_descriptor), param, value, ctx)
        assert got == expected, (where, value)
        assert type(got[1]) is type(expected[1]), (where, value)
        answered += len(built) == before
    # None and the default at least: else pydantic is imported after all
    assert answered >= 2, f"{where}: {answered} values answered without the adapter"


def test_a_rejected_value_is_worded_by_typer(tmp_path: pathlib.Path) -> None:
    image = tmp_path / "a.raw"
    image.write_bytes(b"\0" * 4096)
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", "image", "copy", str(image), str(tmp_path / "b"),
         "--workers", "65", "--dry-run"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Invalid value for '--workers'" in done.stderr, done.stderr
    assert "less than or equal to 64" in done.stderr, done.stderr
