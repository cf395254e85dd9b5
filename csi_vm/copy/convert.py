"""Conversions to and from qcow2 (import and export), done by qemu-img.

The source is checked first (``qemu.QemuImg.inspect``), the output goes through
the same staging as a raw copy (a temporary file renamed into place, or the
device itself) and is flushed by us, and ``verify`` asks qemu-img to compare
the guest-visible content of both sides.
"""

from __future__ import annotations

import os
import time

from csi_vm import errors
from csi_vm.copy import endpoints, failures, model, qemu, staging


def convert(
    src: endpoints.Endpoint,
    dst: endpoints.Endpoint,
    *,
    source_format: model.Format,
    options: model.Options,
    tool: qemu.QemuImg,
) -> model.Result:
    started = time.monotonic()
    formats = (source_format, options.output)
    if options.output is model.Format.QCOW2 and dst.kind is endpoints.Kind.BLOCK:
        raise errors.InvalidInput(
            f"cannot write a qcow2 image onto block device {dst.path}",
            hint="qcow2 output needs a file target; use --format raw for devices",
        )
    size, allocated = sizes(src, source_format=source_format, tool=tool)
    meter = model.Meter(options, phase=model.Phase.COPY, total=allocated)
    with staging.open_target(dst, size=size if options.output is model.Format.RAW else 0) as out:
        tool.convert(
            src.path,
            out.path,
            formats=formats,
            existing=not out.is_file,
            target_zeroed=options.target_zeroed,
            on_percent=lambda pct: meter.add(int(allocated * pct / 100) - meter.done),
            cancel=options.cancel,
        )
        if options.output is model.Format.RAW:
            out.extend_to(options.min_size)  # after qemu-img, which sets the length itself
        out.flush(for_verify=options.verify)
        copied = _allocated_bytes(out) if out.is_file else size
        checked = time.monotonic()
        if options.verify:
            _verify(src, out, formats=formats, options=options, tool=tool)
        verify_seconds = time.monotonic() - checked
        out.commit()
    return model.Result(
        source=src.path,
        target=dst.path,
        source_format=source_format,
        target_format=options.output,
        method=model.Method.QEMU_IMG,
        size=size,
        allocated=allocated,
        copied=copied,
        seconds=time.monotonic() - started,
        verified=options.verify,
        verify_seconds=verify_seconds,
    )


def sizes(
    src: endpoints.Endpoint, *, source_format: model.Format, tool: qemu.QemuImg
) -> tuple[int, int]:
    """(guest-visible size, bytes the source takes); refuses an unusable qcow2."""
    if source_format is model.Format.QCOW2:
        info = tool.inspect(src.path, file_size=src.size)
        return info.virtual_size, info.actual_size
    if src.kind is endpoints.Kind.BLOCK:
        return src.size, src.size
    return src.size, min(src.size, os.stat(src.path).st_blocks * 512)


def _verify(
    src: endpoints.Endpoint,
    out: staging.Staged,
    *,
    formats: tuple[model.Format, model.Format],
    options: model.Options,
    tool: qemu.QemuImg,
) -> None:
    if options.before_verify is not None:
        options.before_verify(out.path)
    meter = model.Meter(options, phase=model.Phase.VERIFY, total=100)
    if not tool.same(src.path, out.path, formats=formats, cancel=options.cancel):
        raise errors.DataSafetyError(
            f"verification failed: {out.dst.path} differs from {src.path}",
            hint="the target is not a faithful conversion; do not use it",
        )
    meter.add(100)


def _allocated_bytes(out: staging.Staged) -> int:
    try:
        # st_blocks counts 512-byte units whatever the filesystem's block size.
        return os.fstat(out.fd).st_blocks * 512
    except OSError as err:
        raise failures.translate(err, path=out.dst.path, doing="measuring") from err
