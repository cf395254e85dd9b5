"""Loop devices and bind mounts through the kernel's own interfaces.

The driver sets up a loop device, and binds and unmounts, several times per
request. Doing that with losetup, mount and umount cost a process spawn each,
which was most of the driver's CPU time in a capability probe. These calls
are the ones those tools make: /dev/loop-control and the LOOP_* ioctls of
linux/loop.h (LOOP_CONFIGURE needs Linux 5.8), and mount(2) / umount2(2).
Mounting a filesystem with user-given options stays with mount(8), which
knows how to turn every option into flags and data.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

#: ioctl numbers of linux/loop.h
LOOP_CLR_FD = 0x4C01
LOOP_GET_STATUS64 = 0x4C05
LOOP_SET_CAPACITY = 0x4C07
LOOP_CONFIGURE = 0x4C0A
LOOP_CTL_GET_FREE = 0x4C82
LO_FLAGS_READ_ONLY = 1
#: struct loop_info64: five u64, four u32, two 64-byte names, a 32-byte key, two u64
_LOOP_INFO64 = struct.Struct("=5Q4I64s64s32s2Q")
#: struct loop_config: fd, block_size, the loop_info64, eight reserved u64
_LOOP_CONFIG = struct.Struct(f"=II{_LOOP_INFO64.size}s64x")
_LO_NAME_SIZE = 64

#: mount(2) flags of linux/mount.h
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096

# Another process may take the free device between GET_FREE and CONFIGURE
# (the driver's own threads, another driver, an operator's losetup): ask again.
_FREE_ATTEMPTS = 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class KernelCallFailed(Exception):
    """A loop ioctl or a mount call failed; ``str()`` says which and why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.errno = code


def loop_attach(image: str, *, read_only: bool, control: str = "/dev/loop-control") -> str:
    """Attach ``image`` to a free loop device; its path (``/dev/loopN``)."""
    backing = _open(image, os.O_RDONLY if read_only else os.O_RDWR)
    try:
        info = _LOOP_INFO64.pack(
            0, 0, 0, 0, 0, 0, 0, 0,
            LO_FLAGS_READ_ONLY if read_only else 0,
            os.fsencode(image)[: _LO_NAME_SIZE - 1], b"", b"", 0, 0,
        )  # fmt: skip
        config = _LOOP_CONFIG.pack(backing, 0, info)
        ctl = _open(control, os.O_RDWR)
        try:
            return _configure_free(ctl, config, image)
        finally:
            os.close(ctl)
    finally:
        os.close(backing)


def _configure_free(ctl: int, config: bytes, image: str) -> str:
    for _ in range(_FREE_ATTEMPTS):
        number = _ioctl(ctl, LOOP_CTL_GET_FREE, 0, what=f"finding a free loop device for {image}")
        device = f"/dev/loop{number}"
        fd = _open(device, os.O_RDWR)
        try:
            fcntl.ioctl(fd, LOOP_CONFIGURE, config)
        except OSError as err:
            if err.errno == errno.EBUSY:
                continue  # taken meanwhile
            raise _failed(f"attaching {image} to {device}", err) from err
        finally:
            os.close(fd)
        return device
    raise KernelCallFailed(
        errno.EBUSY, f"no free loop device for {image}: {_FREE_ATTEMPTS} were taken meanwhile"
    )


def loop_detach(device: str, *, backing: str | None = None) -> bool:
    """Detach ``device``; one still held open is detached at its last close.

    With ``backing``, only while the device reads that very file (its inode,
    asked of the device we hold open: a name checked before may be freed and
    taken by another image meanwhile). Whether it was detached.
    """
    fd = _open(device, os.O_RDONLY)
    try:
        if backing is not None and not _reads(fd, backing):
            return False
        _ioctl(fd, LOOP_CLR_FD, 0, what=f"detaching {device}")
        return True
    finally:
        os.close(fd)


def _reads(fd: int, backing: str) -> bool:
    """Whether the loop device open at ``fd`` is attached to the file ``backing``."""
    try:
        info = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_LOOP_INFO64.size))
        st = os.stat(backing)
    except OSError:  # detached already (ENXIO), or the file is gone
        return False
    lo_device, lo_inode = _LOOP_INFO64.unpack(info)[:2]
    return (lo_device, lo_inode) == (st.st_dev, st.st_ino)


def loop_set_capacity(device: str) -> None:
    """Make ``device`` take the current size of its backing file."""
    fd = _open(device, os.O_RDONLY)
    try:
        _ioctl(fd, LOOP_SET_CAPACITY, 0, what=f"resizing {device} to its backing file")
    finally:
        os.close(fd)


def bind(source: str, target: str, *, read_only: bool) -> None:
    """Bind-mount ``source`` (a directory or a file) onto ``target``."""
    _mount(source, target, MS_BIND, what=f"binding {source} onto {target}")
    if read_only:
        # A bind mount ignores MS_RDONLY when made; only a remount sets it.
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        try:
            _mount(None, target, flags, what=f"making {target} read-only")
        except KernelCallFailed:
            umount(target)  # never leave a writable bind where read-only was asked
            raise


def umount(target: str) -> None:
    """Unmount the topmost mount at ``target``."""
    if _libc.umount2(os.fsencode(target), 0) != 0:
        raise _failed(f"unmounting {target}", _errno())


def _mount(source: str | None, target: str, flags: int, *, what: str) -> None:
    src = os.fsencode(source) if source is not None else None
    if _libc.mount(src, os.fsencode(target), None, flags, None) != 0:
        raise _failed(what, _errno())


def _open(path: str, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError as err:
        raise _failed(f"opening {path}", err) from err


def _ioctl(fd: int, request: int, arg: int, *, what: str) -> int:
    try:
        return fcntl.ioctl(fd, request, arg)
    except OSError as err:
        raise _failed(what, err) from err


def _errno() -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code))


def _failed(what: str, err: OSError) -> KernelCallFailed:
    code = err.errno or errno.EIO
    return KernelCallFailed(code, f"{what}: {os.strerror(code)}")
