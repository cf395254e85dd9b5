"""Format detection by magic: qcow2, raw, and what is refused by name."""

from __future__ import annotations

import pathlib
import struct

import pytest

from csi_vm import errors
from csi_vm.copy import formats, model


def _file(path: pathlib.Path, head: bytes, *, size: int = 4096, offset: int = 0) -> pathlib.Path:
    data = bytearray(size)
    data[offset : offset + len(head)] = head
    path.write_bytes(bytes(data))
    return path


def test_qcow2_by_magic(tmp_path: pathlib.Path) -> None:
    path = _file(tmp_path / "a", b"QFI\xfb" + struct.pack(">I", 3), size=1000)
    assert formats.detect(path, size=1000) is model.Format.QCOW2


def test_raw_is_anything_else_in_whole_sectors(tmp_path: pathlib.Path) -> None:
    path = _file(tmp_path / "a", b"\xeb\x63\x90")
    assert formats.detect(path, size=4096) is model.Format.RAW


def test_unknown_qcow2_version(tmp_path: pathlib.Path) -> None:
    path = _file(tmp_path / "a", b"QFI\xfb" + struct.pack(">I", 9))
    with pytest.raises(errors.InvalidInput, match="version 9"):
        formats.detect(path, size=4096)


def test_qcow2_header_cut_short(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a"
    path.write_bytes(b"QFI\xfb\x00")
    with pytest.raises(errors.InvalidInput, match="truncated qcow2"):
        formats.detect(path, size=5)


@pytest.mark.parametrize(
    ("head", "offset", "name"),
    [
        (b"KDMV", 0, "vmdk"),
        (b"vhdxfile", 0, "vhdx"),
        (b"\x7f\x10\xda\xbe", 0x40, "vdi"),
        (b"\x1f\x8b\x08", 0, "gzip"),
        (b"ustar", 257, "tar"),
        (b"QFI\x00", 0, "qcow version 1"),
    ],
    ids=["vmdk", "vhdx", "vdi", "gzip", "tar", "qcow1"],
)
def test_other_formats_refused_by_name(
    tmp_path: pathlib.Path, head: bytes, offset: int, name: str
) -> None:
    path = _file(tmp_path / "img", head, offset=offset)
    with pytest.raises(errors.InvalidInput, match=f"{path} is a {name}"):
        formats.detect(path, size=4096)


@pytest.mark.parametrize(
    ("size", "match"),
    [(0, "is empty"), (1000, "not a multiple of 512")],
    ids=["empty", "odd-size"],
)
def test_not_a_disk_image(tmp_path: pathlib.Path, size: int, match: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello" * (size // 5))
    with pytest.raises(errors.InvalidInput, match=match):
        formats.detect(path, size=size)
