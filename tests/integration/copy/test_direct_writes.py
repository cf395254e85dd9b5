"""A copy onto a block device writes it with O_DIRECT where the writes are aligned.

A buffered write to a loop device is cached twice (the device's page cache and
its backing file's); the engine writes aligned runs direct, so the device's own
page cache is left empty, and an unaligned end buffered, still correct.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import pathlib
from collections.abc import Callable

import pytest

from csi_vm.copy import engine, model

from .conftest import MiB, make_image, same_bytes

pytestmark = pytest.mark.integration

SIZE = 64 * MiB
Loop = Callable[..., pathlib.Path]
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def cached_pages(device: pathlib.Path, size: int) -> int:
    """Pages of the device's first `size` bytes in its page cache (mincore of a mapping)."""
    fd = os.open(device, os.O_RDWR)
    try:
        mapped = mmap.mmap(fd, size)
        try:
            pages = -(-size // mmap.PAGESIZE)
            vec = (ctypes.c_ubyte * pages)()
            start = ctypes.c_char.from_buffer(mapped)
            failed = _libc.mincore(ctypes.addressof(start), size, vec) != 0
            del start  # the mapping cannot close while a buffer points into it
            if failed:
                raise OSError(ctypes.get_errno(), "mincore")
            return sum(b & 1 for b in vec)
        finally:
            mapped.close()
    finally:
        os.close(fd)


def test_aligned_writes_leave_the_device_cache_empty(
    tmp_path: pathlib.Path, loop_device: Loop
) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=8)
    device = loop_device(SIZE)
    # Held open: the last close of a block device drops its page cache.
    held = os.open(device, os.O_RDONLY)
    try:
        options = model.Options(overwrite=True, target_zeroed=True)
        assert engine.copy(src, device, options=options).copied == 8 * MiB
        # Written buffered, the 8 MiB would stay in the device's cache (2048 pages).
        assert cached_pages(device, SIZE) == 0
    finally:
        os.close(held)
    assert same_bytes(src, device, size=SIZE)


def test_an_unaligned_end_is_written_too(tmp_path: pathlib.Path, loop_device: Loop) -> None:
    """An image whose size is not a whole number of 4 KiB pages, data up to its last byte,
    onto a used device: every aligned run goes direct, the last one buffered."""
    size = SIZE - 512
    src = make_image(tmp_path / "src.img", size=size, extents=4)
    with src.open("r+b") as f:
        f.seek(size - 3 * MiB)
        f.write(b"\x7e" * 3 * MiB)
    device = loop_device(SIZE, fill=0xA5)
    engine.copy(src, device, options=model.Options(overwrite=True, verify=True))
    with device.open("rb") as f:
        assert f.read(size) == src.read_bytes()
        assert f.read() == b"\xa5" * 512
