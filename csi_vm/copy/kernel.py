"""Every system call of the copy engine beyond plain open/read/write: seeking
data, reflink, in-kernel copy, block device ioctls, writeback and flushing.

Kept in one module so that unit tests can replace any of them. Calls that a
filesystem or device may not offer raise :class:`NotSupported`, which the
engine takes as "use the next method", never as a failure.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import struct
from collections.abc import Iterator

from csi_vm.copy import plan

# ioctl numbers from linux/fs.h; Python's fcntl module does not name them.
#: FICLONE = _IOW(0x94, 9, int): share all of one file's blocks with another
FICLONE = 0x40049409
#: FICLONERANGE = _IOW(0x94, 13, struct file_clone_range), a 32-byte struct
FICLONERANGE = 0x4020940D
#: BLKGETSIZE64 = _IOR(0x12, 114, size_t): a block device's size in bytes
BLKGETSIZE64 = 0x80081272
#: BLKZEROOUT = _IO(0x12, 127): zero a byte range of a block device
BLKZEROOUT = 0x127F
#: LOOP_GET_STATUS64 (linux/loop.h): a loop device's backing file, as struct loop_info64
LOOP_GET_STATUS64 = 0x4C05
#: struct loop_info64: lo_device, lo_inode, lo_rdevice, lo_offset, lo_sizelimit (all
#: u64), then numbers, flags, names and key: 232 bytes in all
_LOOP_INFO64 = struct.Struct("=5Q192x")
#: the block major of loop devices (Documentation/admin-guide/devices.txt)
_LOOP_MAJOR = 7

# fallocate(2) and sync_file_range(2) flags from linux/falloc.h and linux/fs.h.
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_SYNC_FILE_RANGE_WRITE = 0x02

#: errnos meaning "this filesystem, device or pair of them cannot do that"
_UNSUPPORTED = {
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.EXDEV,
    errno.EINVAL,
    errno.ENOTTY,
    errno.ENOSYS,
}

# os lacks fallocate with flags and sync_file_range; libc has both. ctypes
# drops the GIL during foreign calls, so workers still run in parallel.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


class NotSupported(Exception):
    """The filesystem or device does not offer this call; take the next method."""


def data_extents(fd: int, *, size: int) -> Iterator[plan.Extent]:
    """Data regions of a file from SEEK_DATA/SEEK_HOLE; the rest reads as zeros.

    A block device has no holes to seek, so every byte of it is read; a loop
    device answers for the file behind it instead (`_loop_backing`), so a
    sparse disk on one is read for its data alone.
    """
    backing = _loop_backing(fd)
    if backing is None:
        yield from _seek_extents(fd, start=0, end=size)
        return
    file_fd, offset = backing
    try:
        for start, length in _seek_extents(file_fd, start=offset, end=offset + size):
            yield start - offset, length
    finally:
        os.close(file_fd)


def _seek_extents(fd: int, *, start: int, end: int) -> Iterator[plan.Extent]:
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as err:
            if err.errno == errno.ENXIO:  # no data at or after pos
                return
            if err.errno in _UNSUPPORTED:  # no SEEK_DATA: everything is data
                yield pos, end - pos
                return
            raise
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole - data
        pos = hole


def _loop_backing(fd: int) -> tuple[int, int] | None:
    """The file a loop device reads, opened, and where in it the device starts; or None.

    The file is trusted only if it is the very one the device holds (LOOP_GET_STATUS64
    names its device and inode): a path seen from another mount namespace, or a file
    replaced since, would give another file's holes. The device is flushed first, so
    data written to it and not yet to the file is seen by SEEK_DATA.
    """
    st = os.fstat(fd)
    if not stat.S_ISBLK(st.st_mode) or os.major(st.st_rdev) != _LOOP_MAJOR:
        return None
    try:
        info = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(_LOOP_INFO64.size))
        device, inode, _, offset, _ = _LOOP_INFO64.unpack_from(info)
        sysfs = f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}/loop/backing_file"
        with open(sysfs, encoding="utf-8") as stream:
            path = stream.read().rstrip("\n")
        os.fsync(fd)
        file_fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    held = os.fstat(file_fd)
    if (held.st_dev, held.st_ino) != (device, inode):
        os.close(file_fd)
        return None
    return file_fd, offset


def clone_file(src_fd: int, dst_fd: int) -> None:
    """Reflink a whole file (FICLONE): the target shares every block of the source."""
    _ioctl_or_unsupported(dst_fd, FICLONE, src_fd)


def clone_range(src_fd: int, dst_fd: int, *, offset: int, length: int) -> None:
    """Reflink one range to the same offset (FICLONERANGE); block-aligned but at EOF."""
    arg = struct.pack("=qQQQ", src_fd, offset, length, offset)
    _ioctl_or_unsupported(dst_fd, FICLONERANGE, arg)


def copy_range(src_fd: int, dst_fd: int, *, offset: int, length: int) -> None:
    """Copy one range inside the kernel (copy_file_range), looping over short copies."""
    done = 0
    while done < length:
        try:
            n = os.copy_file_range(src_fd, dst_fd, length - done, offset + done, offset + done)
        except OSError as err:
            if err.errno in _UNSUPPORTED:
                raise NotSupported(os.strerror(err.errno)) from err
            raise
        if n == 0:
            raise OSError(errno.EIO, f"source ended early at byte {offset + done}")
        done += n


def read_into(fd: int, buf: bytearray | memoryview, *, offset: int, length: int) -> None:
    """Fill ``buf[:length]`` from ``offset``; a short read means the source shrank."""
    view = memoryview(buf)
    done = 0
    while done < length:
        n = os.preadv(fd, [view[done:length]], offset + done)
        if n == 0:
            raise OSError(errno.EIO, f"source ended early at byte {offset + done}")
        done += n


#: what O_DIRECT asks of a write's memory, offset and length: a multiple of the
#: device's logical block size, which is at most 4096 on every common device
DIRECT_ALIGN = 4096


def aligned_buffer(size: int) -> tuple[bytearray, int]:
    """A buffer of ``size`` bytes for direct I/O: a bytearray, and the offset in it
    where its part aligned to DIRECT_ALIGN begins (a bytearray never moves unless resized)."""
    buf = bytearray(size + DIRECT_ALIGN)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    return buf, -address % DIRECT_ALIGN


def write_all(fd: int, data: memoryview, *, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwritev(fd, [data[done:]], offset + done)


def device_size(fd: int) -> int:
    out = fcntl.ioctl(fd, BLKGETSIZE64, b"\0" * 8)
    return int(struct.unpack("=Q", out)[0])


def zero_device_range(fd: int, *, offset: int, length: int) -> None:
    """Make a block device range read as zeros, as cheaply as the device allows.

    fallocate(PUNCH_HOLE) asks for unmap-style zeroing and fails rather than
    write zeros, which keeps thin volumes (and loop devices' backing files)
    thin; BLKZEROOUT then lets the kernel zero by whatever means the device has.
    """
    if _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return
    arg = struct.pack("=QQ", offset, length)
    fcntl.ioctl(fd, BLKZEROOUT, arg)


def start_writeback(fd: int, *, offset: int, length: int) -> None:
    """Start writing a range to disk now, without waiting for it.

    Overlaps the disk writes with the rest of the copy, so the final fsync has
    little left to do. Best effort: a filesystem without it loses only speed.
    """
    _libc.sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def prefetch(fd: int, *, offset: int, length: int) -> None:
    """Ask the kernel to start reading a range into the cache (POSIX_FADV_WILLNEED).

    Reads for many pieces then run at once, deep in the disk's queue, instead
    of one short burst per worker; the copy later finds the data cached.
    """
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)


def flush(fd: int) -> None:
    os.fsync(fd)


def drop_cache(fd: int) -> None:
    """Forget the (clean) cached pages of a flushed file, so verification reads the medium."""
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _ioctl_or_unsupported(fd: int, request: int, arg: int | bytes) -> None:
    try:
        fcntl.ioctl(fd, request, arg)
    except OSError as err:
        if err.errno in _UNSUPPORTED:
            raise NotSupported(os.strerror(err.errno)) from err
        raise
