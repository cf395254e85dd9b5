"""The copy engine as flows use it: disk to disk, image in, image out."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

from csi_vm.copy import convert, endpoints, engine, formats, model, qemu

#: progress(what, done_bytes, total_bytes), as in flows.context
Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageInfo:
    format: str
    virtual_size: int


def inspect(image: pathlib.Path) -> ImageInfo:
    """Format and guest-visible size of an image; refuses what is not raw or a sound qcow2."""
    src = endpoints.source(image)
    fmt = formats.detect(image, size=src.size)
    size, _ = convert.sizes(src, source_format=fmt, tool=qemu.QemuImg())
    return ImageInfo(format=fmt.value, virtual_size=size)


def copy(src: str, dst: str, *, what: str, progress: Progress, verify: bool = False) -> int:
    """Copy a disk onto a fresh volume's device or image file; returns bytes copied.

    The target is a new CSI volume, so it reads as zeros: holes need no writing.
    """
    options = model.Options(
        overwrite=True, target_zeroed=True, verify=verify, progress=_reporter(what, progress)
    )
    return engine.copy(pathlib.Path(src), pathlib.Path(dst), options=options).copied


def import_image(image: str, dst: str, *, size: int, progress: Progress) -> int:
    # min_size: an image smaller than a filesystem-mode disk would otherwise
    # replace its image file with a shorter one (a device keeps its size).
    options = model.Options(
        overwrite=True,
        target_zeroed=True,
        min_size=size,
        progress=_reporter(f"import {image}", progress),
    )
    return engine.copy(pathlib.Path(image), pathlib.Path(dst), options=options).copied


def export_image(src: str, file: str, *, fmt: str, progress: Progress) -> None:
    """Write a disk to a file; the engine writes a temporary file and renames it when complete."""
    options = model.Options(
        output=model.Format(fmt), overwrite=True, progress=_reporter(f"export {file}", progress)
    )
    engine.copy(pathlib.Path(src), pathlib.Path(file), options=options)


def _reporter(what: str, progress: Progress) -> model.Progress:
    def report(phase: model.Phase, done: int, total: int) -> None:
        label = what if phase is model.Phase.COPY else f"{what} ({phase})"
        progress(label, done, total)

    return report
