"""Failures leave no partial target: a corrupted copy, a full filesystem, a cancel."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable

import pytest

from csi_vm import errors
from csi_vm.copy import engine, model

from .conftest import MiB, make_image

pytestmark = pytest.mark.integration


def _corrupt(path: pathlib.Path) -> None:
    """Flip one byte of the written target, as a bad disk or a bug would."""
    with path.open("r+b") as f:
        f.seek(5 * MiB + 123)
        byte = f.read(1)
        f.seek(5 * MiB + 123)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("output", list(model.Format), ids=str)
def test_verify_catches_a_corrupted_target(tmp_path: pathlib.Path, output: model.Format) -> None:
    src = tmp_path / "src.img"
    with src.open("wb") as f:
        f.write(b"\x11" * 16 * MiB)
    dst = tmp_path / "dst.img"
    options = model.Options(output=output, verify=True, before_verify=_corrupt)
    with pytest.raises(errors.DataSafetyError, match="verification failed"):
        engine.copy(src, dst, options=options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.img"]


def test_no_space_gives_a_clear_error_and_leaves_nothing(
    tmp_path: pathlib.Path, filesystem: Callable[..., pathlib.Path]
) -> None:
    small = filesystem(32 * MiB, "mkfs.ext4", "-q")
    before = sorted(p.name for p in small.iterdir())
    src = make_image(tmp_path / "src.img", size=128 * MiB, extents=64)
    with pytest.raises(errors.OutOfRange, match=f"no space left while copying .* to {small}"):
        engine.copy(src, small / "dst.img", options=model.Options())
    assert sorted(p.name for p in small.iterdir()) == before


def test_failed_overwrite_keeps_the_old_target(
    tmp_path: pathlib.Path, filesystem: Callable[..., pathlib.Path]
) -> None:
    small = filesystem(32 * MiB, "mkfs.ext4", "-q")
    (small / "dst.img").write_bytes(b"old content")
    src = make_image(tmp_path / "src.img", size=128 * MiB, extents=64)
    with pytest.raises(errors.OutOfRange):
        engine.copy(src, small / "dst.img", options=model.Options(overwrite=True))
    assert (small / "dst.img").read_bytes() == b"old content"


def test_cancel_removes_the_partial_target(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=256 * MiB, extents=64)
    cancel = threading.Event()

    def progress(phase: model.Phase, done: int, total: int) -> None:
        if done > 0:
            cancel.set()

    options = model.Options(cancel=cancel, progress=progress, workers=1)
    with pytest.raises(model.Interrupted):
        engine.copy(src, tmp_path / "dst.img", options=options)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.img"]
