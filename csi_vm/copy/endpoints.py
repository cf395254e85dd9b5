"""What the source and the target of a copy are: a file or a block device, its
size, and whether the copy may go ahead at all."""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib
import stat

from csi_vm import errors
from csi_vm.copy import failures, kernel


class Kind(enum.StrEnum):
    FILE = "file"
    BLOCK = "block device"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Endpoint:
    path: pathlib.Path
    kind: Kind
    #: bytes: the file's length or the device's capacity (0 for a target to create)
    size: int
    exists: bool
    #: identity, to refuse copying something onto itself
    ident: tuple[int, int]
    #: filesystem of a file (st_dev): reflink needs both files on the same one
    filesystem: int


def source(path: pathlib.Path) -> Endpoint:
    st = _stat(path, doing="reading source")
    if st is None:
        raise errors.NotFound(f"source {path} does not exist")
    return _endpoint(path, st, role="source")


def target(path: pathlib.Path, *, src: Endpoint, overwrite: bool) -> Endpoint:
    st = _stat(path, doing="checking target")
    if st is None:
        parent = path.parent
        if not parent.is_dir():
            raise errors.NotFound(f"target directory {parent} does not exist")
        info = _stat(parent, doing="checking target directory")
        fs = info.st_dev if info else 0
        return Endpoint(
            path=path, kind=Kind.FILE, size=0, exists=False, ident=(0, 0), filesystem=fs
        )
    dst = _endpoint(path, st, role="target")
    if dst.ident == src.ident:
        raise errors.InvalidInput(f"source and target are the same {dst.kind}: {path}")
    if not overwrite:
        raise errors.AlreadyExists(
            f"target {path} exists", hint="pass --force to overwrite it (its data is lost)"
        )
    return dst


def _endpoint(path: pathlib.Path, st: os.stat_result, *, role: str) -> Endpoint:
    if stat.S_ISREG(st.st_mode):
        return Endpoint(
            path=path,
            kind=Kind.FILE,
            size=st.st_size,
            exists=True,
            ident=(st.st_dev, st.st_ino),
            filesystem=st.st_dev,
        )
    if stat.S_ISBLK(st.st_mode):
        return Endpoint(
            path=path,
            kind=Kind.BLOCK,
            size=_device_size(path),
            exists=True,
            ident=(-1, st.st_rdev),
            filesystem=-1,
        )
    if stat.S_ISDIR(st.st_mode):
        raise errors.InvalidInput(f"{role} {path} is a directory", hint="give a file path")
    raise errors.InvalidInput(f"{role} {path} is neither a regular file nor a block device")


def _stat(path: pathlib.Path, *, doing: str) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise failures.translate(err, path=path, doing=doing) from err


def _device_size(path: pathlib.Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise failures.translate(err, path=path, doing="opening") from err
    try:
        return kernel.device_size(fd)
    finally:
        os.close(fd)
