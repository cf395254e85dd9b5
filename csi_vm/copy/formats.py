"""Which image format a file or device holds: qcow2 by its magic, raw otherwise.

Raw images have no magic, so "raw" means "not something else": the formats
that qemu-img also recognises (and archives people mistake for images) are
named and refused, and so is a file whose size is not a whole number of
512-byte sectors, which no disk image has.
"""

from __future__ import annotations

import os
import pathlib
import struct

from csi_vm import errors
from csi_vm.copy import failures, model

SECTOR = 512
#: qcow2 header: "QFI\\xfb", then a big-endian version (2 or 3)
_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_VERSIONS = (2, 3)
#: (offset, magic, name) of formats refused by name; from each format's spec
_OTHERS = (
    (0, b"QFI\x00", "qcow version 1"),
    (0, b"QED\x00", "qed"),
    (0, b"KDMV", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk descriptor"),
    (0, b"vhdxfile", "vhdx"),
    (0, b"conectix", "vhd (dynamic)"),
    (0x40, b"\x7f\x10\xda\xbe", "vdi"),
    (0, b"LUKS\xba\xbe", "luks"),
    (0, b"\x1f\x8b", "gzip archive"),
    (0, b"\xfd7zXZ\x00", "xz archive"),
    (0, b"\x28\xb5\x2f\xfd", "zstd archive"),
    (0, b"BZh", "bzip2 archive"),
    (0, b"PK\x03\x04", "zip archive"),
    (257, b"ustar", "tar archive"),
)
_HEADER = 512


def detect(path: pathlib.Path, *, size: int) -> model.Format:
    """The format of the image at ``path`` of ``size`` bytes, or InvalidInput naming it."""
    if size == 0:
        raise errors.InvalidInput(f"{path} is empty: not a disk image")
    head = _read_head(path)
    if head.startswith(_QCOW2_MAGIC):
        _check_qcow2_version(path, head)
        return model.Format.QCOW2
    for offset, magic, name in _OTHERS:
        if head[offset : offset + len(magic)] == magic:
            raise errors.InvalidInput(
                f"{path} is a {name} file, not a raw or qcow2 image",
                hint="convert it to qcow2 or raw first (qemu-img convert)",
            )
    if size % SECTOR:
        raise errors.InvalidInput(
            f"{path} is not a disk image: its size ({size} bytes) is not a multiple of {SECTOR}",
            hint="only raw and qcow2 images can be copied",
        )
    return model.Format.RAW


def _check_qcow2_version(path: pathlib.Path, head: bytes) -> None:
    if len(head) < 8:
        raise errors.InvalidInput(f"{path} is a truncated qcow2 image (no complete header)")
    (version,) = struct.unpack(">I", head[4:8])
    if version not in _QCOW2_VERSIONS:
        raise errors.InvalidInput(f"{path} is qcow2 version {version}; only 2 and 3 are known")


def _read_head(path: pathlib.Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise failures.translate(err, path=path, doing="reading") from err
    try:
        return os.pread(fd, _HEADER, 0)
    except OSError as err:
        raise failures.translate(err, path=path, doing="reading") from err
    finally:
        os.close(fd)
