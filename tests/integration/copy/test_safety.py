"""Failures leave no partial target: a corrupted copy, a full filesystem, a cancel."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from csi_vm import errors
from csi_vm.copy import engine, model, staging

from .conftest import MiB, make_image, same_bytes

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


def test_copy_after_a_kill_removes_what_the_killed_copy_left(tmp_path: pathlib.Path) -> None:
    """kill -9 leaves a temporary file; the next copy to that target sweeps it."""
    src = make_image(tmp_path / "src.img", size=1024 * MiB, extents=512)
    dst = tmp_path / "dst.img"
    # One worker keeps the copy slow enough to be caught midway.
    args = [sys.executable, "-m", "csi_vm", "image", "copy", str(src), str(dst), "--workers", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        partial = _wait_for_partial(tmp_path, proc)
        proc.kill()
    finally:
        proc.wait()
    assert partial.exists(), "the killed copy left no temporary file: nothing was tested"
    assert not dst.exists()
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst.img", "src.img"]
    assert same_bytes(src, dst, size=1024 * MiB)


def test_a_live_copy_keeps_its_temporary_file(tmp_path: pathlib.Path) -> None:
    """A temporary file whose process still runs is not another copy's to remove."""
    target = tmp_path / "dst.img"
    live = tmp_path / f".dst.img.partial-{socket.gethostname()}-{os.getpid()}-0000abcd"
    live.write_bytes(b"in progress")
    dead_pid = _dead_pid()
    dead = tmp_path / f".dst.img.partial-{socket.gethostname()}-{dead_pid}-0000abcd"
    dead.write_bytes(b"abandoned")
    other_host = tmp_path / f".dst.img.partial-elsewhere.example-{dead_pid}-0000abcd"
    other_host.write_bytes(b"another host's")
    assert staging.sweep_stale(target) == [dead]
    assert live.exists() and other_host.exists() and not dead.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _wait_for_partial(directory: pathlib.Path, proc: subprocess.Popen[bytes]) -> pathlib.Path:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        found = [p for p in directory.iterdir() if ".partial-" in p.name]
        if found and found[0].stat().st_blocks > 0:
            return found[0]
        time.sleep(0.005)
    raise AssertionError(f"no temporary file appeared while copying (exit {proc.returncode})")
