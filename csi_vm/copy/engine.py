"""The copy engine's entry points: ``copy`` an image, or ``describe`` what a copy would do.

Raw to raw goes through ``rawcopy`` (reflink, copy_file_range or read/write,
sparse); anything involving qcow2 goes through ``convert`` (qemu-img).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import TYPE_CHECKING

from csi_vm.copy import endpoints, formats, methods, model, rawcopy

if TYPE_CHECKING:
    from csi_vm.copy import qemu

# convert and qemu (subprocess, qemu-img's output parsing) are imported where
# qcow2 is involved: a raw copy's start-up, a part of its time, skips them.


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    """What a copy would do, found without writing anything."""

    source: endpoints.Endpoint
    target: endpoints.Endpoint
    source_format: model.Format
    target_format: model.Format
    #: methods that will be tried, in order
    methods: list[model.Method]
    #: guest-visible size of the image
    size: int
    #: how the target's zero ranges are handled
    zeroing: str


def copy(
    source: pathlib.Path,
    target: pathlib.Path,
    *,
    options: model.Options,
    tool: qemu.QemuImg | None = None,
) -> model.Result:
    """Copy or convert ``source`` to ``target``; flushed before it returns.

    Raises from ``csi_vm.errors`` only; on any failure or cancel a target file
    that was being created is removed and an existing one is left as it was.
    """
    src, dst, src_fmt = _inspect(source, target, options=options)
    if src_fmt is model.Format.RAW and options.output is model.Format.RAW:
        return rawcopy.copy(src, dst, options=options)
    from csi_vm.copy import convert, qemu  # noqa: PLC0415 - see the imports

    return convert.convert(
        src, dst, source_format=src_fmt, options=options, tool=tool or qemu.QemuImg()
    )


def describe(
    source: pathlib.Path,
    target: pathlib.Path,
    *,
    options: model.Options,
    tool: qemu.QemuImg | None = None,
) -> Plan:
    """The plan of ``copy`` with the same arguments, checking the same things."""
    from csi_vm.copy import convert, qemu  # noqa: PLC0415 - see the imports

    src, dst, src_fmt = _inspect(source, target, options=options)
    size, _ = convert.sizes(src, source_format=src_fmt, tool=tool or qemu.QemuImg())
    if src_fmt is model.Format.RAW and options.output is model.Format.RAW:
        files = src.kind is endpoints.Kind.FILE and dst.kind is endpoints.Kind.FILE
        same_fs = src.filesystem == dst.filesystem
        candidates = methods.candidates(same_filesystem=same_fs, files=files)
    else:
        candidates = [model.Method.QEMU_IMG]
    return Plan(
        source=src,
        target=dst,
        source_format=src_fmt,
        target_format=options.output,
        methods=candidates,
        size=size,
        zeroing=_zeroing(dst, options=options),
    )


def _inspect(
    source: pathlib.Path, target: pathlib.Path, *, options: model.Options
) -> tuple[endpoints.Endpoint, endpoints.Endpoint, model.Format]:
    src = endpoints.source(source)
    src_fmt = formats.detect(source, size=src.size)
    dst = endpoints.target(target, src=src, overwrite=options.overwrite)
    return src, dst, src_fmt


def _zeroing(dst: endpoints.Endpoint, *, options: model.Options) -> str:
    if dst.kind is endpoints.Kind.FILE:
        return "none: the target file stays sparse"
    if options.target_zeroed:
        return "none: the device is taken to read as zeros (--target-zeroed)"
    return "the source's holes are zeroed on the device"
