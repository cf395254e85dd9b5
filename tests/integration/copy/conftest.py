"""Fixtures: sparse images with known data, loop devices and small filesystems."""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

from csi_vm.copy import kernel, plan
from tests.support import loops

MiB = 1 << 20


def _need_root() -> None:
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("needs root and losetup (loop devices)")


def make_image(path: pathlib.Path, *, size: int, extents: int, seed: int = 1) -> pathlib.Path:
    """A sparse raw image with ``extents`` random 1 MiB extents of random data."""
    rng = random.Random(seed)
    with path.open("wb") as f:
        f.truncate(size)
        for slot in rng.sample(range(size // MiB), extents):
            f.seek(slot * MiB)
            f.write(rng.randbytes(MiB))
    return path


def same_bytes(a: pathlib.Path, b: pathlib.Path, *, size: int) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        for _ in range(0, size, 4 * MiB):
            if fa.read(4 * MiB) != fb.read(4 * MiB):
                return False
    return True


def data_map(path: pathlib.Path) -> list[tuple[int, int]]:
    """Where a file holds data, by SEEK_DATA/SEEK_HOLE."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return plan.merge(kernel.data_extents(fd, size=os.fstat(fd).st_size))
    finally:
        os.close(fd)


def assert_same_allocation(src: pathlib.Path, dst: pathlib.Path) -> None:
    """The same data ranges, and st_blocks equal but for filesystem metadata (an
    ext4 extent tree block of 4 KiB per few extents)."""
    assert data_map(dst) == data_map(src)
    blocks = src.stat().st_blocks
    assert blocks <= dst.stat().st_blocks <= blocks * 1.01 + 64


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def loop_device(tmp_path: pathlib.Path) -> Iterator[Callable[..., pathlib.Path]]:
    """Factory: a loop device over a sparse file of ``size`` bytes, optionally filled."""
    _need_root()
    devices: list[str] = []

    def make(size: int, *, fill: int | None = None) -> pathlib.Path:
        backing = tmp_path / f"loop-{len(devices)}.img"
        with backing.open("wb") as f:
            f.truncate(size)
            if fill is not None:
                f.write(bytes([fill]) * size)
        devices.append(_run("losetup", "--find", "--show", str(backing)))
        return pathlib.Path(devices[-1])

    yield make
    for device in devices:
        # Not by name alone: a device the test detached may be another run's now.
        loops.detach_under(device, tmp_path)


@pytest.fixture
def filesystem(
    tmp_path: pathlib.Path, loop_device: Callable[..., pathlib.Path]
) -> Iterator[Callable[..., pathlib.Path]]:
    """Factory: a mounted filesystem of ``size`` bytes made by ``mkfs`` on a loop device."""
    mounts: list[pathlib.Path] = []

    def make(size: int, *mkfs: str) -> pathlib.Path:
        device = loop_device(size)
        _run(*mkfs, str(device))
        mountpoint = tmp_path / f"mnt-{len(mounts)}"
        mountpoint.mkdir()
        _run("mount", str(device), str(mountpoint))
        mounts.append(mountpoint)
        return mountpoint

    yield make
    for mountpoint in reversed(mounts):
        subprocess.run(["umount", str(mountpoint)], check=False)
