"""Writing and reading a marker on a published volume, to prove data really moves."""

from __future__ import annotations

import mmap
import os
import pathlib

from csi_vm import errors
from csi_vm.csi import models

_MARKER_FILE = "csi-vm-probe.dat"
_LENGTH = 4096  # one logical block of every device and filesystem in use


def marker(token: str) -> bytes:
    raw = token.encode()
    return (raw * (_LENGTH // len(raw) + 1))[:_LENGTH]


def write(path: str, *, mode: models.VolumeMode, token: str) -> None:
    """Write the token's block at the start of the device or into a file, durably."""
    data = marker(token)
    target = _target(path, mode)
    flags = os.O_WRONLY if mode is models.VolumeMode.BLOCK else os.O_WRONLY | os.O_CREAT
    try:
        fd = os.open(target, flags, 0o600)
        try:
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise errors.OperationFailed(
            f"cannot write to published volume at {target}: {err}"
        ) from err


def read(path: str, *, mode: models.VolumeMode) -> bytes:
    target = _target(path, mode)
    flags = os.O_RDONLY
    if mode is models.VolumeMode.BLOCK:
        # Another node's loop device may have cached this block: go to the media.
        flags |= os.O_DIRECT
    try:
        fd = os.open(target, flags)
        try:
            return _read_aligned(fd) if flags & os.O_DIRECT else os.pread(fd, _LENGTH, 0)
        finally:
            os.close(fd)
    except OSError as err:
        raise errors.OperationFailed(f"cannot read published volume at {target}: {err}") from err


def holds(path: str, *, mode: models.VolumeMode, token: str) -> bool:
    return read(path, mode=mode) == marker(token)


def size_of(path: str, *, mode: models.VolumeMode) -> int:
    """Size the node sees: device size for block, filesystem size for mounts."""
    # Like read and write, a refusal is a failed check, not a crash: a probe in
    # a container may see a device node its device cgroup does not let it open.
    try:
        if mode is models.VolumeMode.BLOCK:
            fd = os.open(path, os.O_RDONLY)
            try:
                return os.lseek(fd, 0, os.SEEK_END)
            finally:
                os.close(fd)
        st = os.statvfs(path)
    except OSError as err:
        raise errors.OperationFailed(f"cannot measure published volume at {path}: {err}") from err
    return st.f_blocks * st.f_frsize


def _read_aligned(fd: int) -> bytes:
    # O_DIRECT needs a page-aligned buffer; an anonymous mmap is one.
    buf = mmap.mmap(-1, _LENGTH)
    try:
        os.preadv(fd, [buf], 0)
        return bytes(buf)
    finally:
        buf.close()


def _target(path: str, mode: models.VolumeMode) -> str:
    if mode is models.VolumeMode.BLOCK:
        return path
    return str(pathlib.Path(path) / _MARKER_FILE)
