"""A reproducible initramfs: a gzip-compressed cpio archive in the "newc" format.

Written here rather than with cpio(1) so the archive holds a /dev/console
device node without mknod on the host (the kernel opens it for init's output
before devtmpfs is mounted) and so every byte depends on the inputs only: fixed
inode numbers, owner root, mtime 0.
"""

from __future__ import annotations

import dataclasses
import gzip
import stat

_MAGIC = b"070701"  # newc, no checksums
_TRAILER = "TRAILER!!!"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One archive member; `path` is relative to the root, without a leading slash."""

    path: str
    mode: int  # file type bits and permissions, as st_mode
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def file(path: str, data: bytes, *, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _member(entry: Entry, ino: int) -> bytes:
    name = entry.path.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
    header = _MAGIC + b"".join(b"%08X" % value for value in fields)
    head = header + name
    return head + _pad4(len(head)) + entry.data + _pad4(len(entry.data))


def pack(entries: list[Entry]) -> bytes:
    """The compressed archive; parents must come before their children."""
    members = [_member(entry, ino) for ino, entry in enumerate(entries, start=1)]
    members.append(_member(Entry(_TRAILER, 0), 0))
    return gzip.compress(b"".join(members), compresslevel=6, mtime=0)
