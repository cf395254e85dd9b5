"""Reading and writing through published volumes, bypassing caches.

Block devices are read and written with O_DIRECT so that what is read back
after a re-publish comes from the volume, not from a page cache that outlived
the previous device. Files are fsynced, and unmounting drops their cache.
"""

from __future__ import annotations

import hashlib
import mmap
import os

MiB = 1024 * 1024

#: O_DIRECT needs offsets and lengths aligned to the logical block size;
#: 4 KiB satisfies every device the suite meets.
ALIGN = 4096

#: Where the round-trip tests put their payload on a block volume, and the
#: file they use on a filesystem volume.
BLOCK_OFFSET = 1 * MiB
FILE_NAME = "csi-conformance.bin"


def pattern(seed: str, size: int) -> bytes:
    """Deterministic, incompressible bytes; different seeds never look alike."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def _aligned(size: int) -> mmap.mmap:
    # Anonymous mappings are page aligned, which is what O_DIRECT wants.
    return mmap.mmap(-1, max(size, ALIGN))


def write_device(path: str, offset: int, payload: bytes) -> None:
    assert offset % ALIGN == 0 and len(payload) % ALIGN == 0
    buf = _aligned(len(payload))
    buf.write(payload)
    fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
    try:
        written = os.pwritev(fd, [memoryview(buf)[: len(payload)]], offset)
        assert written == len(payload), f"short write to {path}: {written} of {len(payload)}"
        os.fsync(fd)
    finally:
        os.close(fd)
        buf.close()


def read_device(path: str, offset: int, size: int) -> bytes:
    assert offset % ALIGN == 0 and size % ALIGN == 0
    buf = _aligned(size)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        got = os.preadv(fd, [memoryview(buf)[:size]], offset)
        return bytes(buf[:got])
    finally:
        os.close(fd)
        buf.close()


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def write_file(directory: str, payload: bytes, name: str = FILE_NAME) -> None:
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_file(directory: str, name: str = FILE_NAME) -> bytes:
    with open(os.path.join(directory, name), "rb") as handle:
        return handle.read()


def filesystem_size(path: str) -> int:
    stat = os.statvfs(path)
    return stat.f_blocks * stat.f_frsize


def store(access: str, path: str, payload: bytes) -> None:
    """Write `payload` where the round-trip tests look for it."""
    if access == "block":
        write_device(path, BLOCK_OFFSET, payload)
    else:
        write_file(path, payload)


def load(access: str, path: str, size: int) -> bytes:
    if access == "block":
        return read_device(path, BLOCK_OFFSET, size)
    return read_file(path)
