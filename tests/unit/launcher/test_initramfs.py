"""The newc archive writer, checked with an independent reader."""

from __future__ import annotations

import gzip
import stat

from launcher import initramfs


def _read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name -> (mode, data, rdev), straight from the format's definition."""
    members, pos = {}, 0
    while True:
        header = data[pos : pos + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos : pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            return members
        members[name] = (mode, body, rdev)


def _sample() -> list[initramfs.Entry]:
    return [
        initramfs.directory("bin"),
        initramfs.file("bin/busybox", b"\x7fELF...", executable=True),
        initramfs.symlink("bin/sh", "/bin/busybox"),
        initramfs.directory("dev"),
        initramfs.char_device("dev/console", 5, 1),
        initramfs.file("init", b"#!/bin/sh\n", executable=True),
    ]


def test_members_round_trip() -> None:
    members = _read_newc(gzip.decompress(initramfs.pack(_sample())))
    assert list(members) == ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "init"]
    mode, body, _ = members["bin/busybox"]
    assert stat.S_ISREG(mode) and mode & 0o777 == 0o755 and body == b"\x7fELF..."
    mode, body, _ = members["bin/sh"]
    assert stat.S_ISLNK(mode) and body == b"/bin/busybox"
    mode, _, rdev = members["dev/console"]
    assert stat.S_ISCHR(mode) and rdev == (5, 1)
    assert stat.S_ISDIR(members["dev"][0])


def test_the_archive_depends_on_its_inputs_only() -> None:
    assert initramfs.pack(_sample()) == initramfs.pack(_sample())
