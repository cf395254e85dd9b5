"""What may be copied where, and how OS errors read."""

from __future__ import annotations

import errno
import pathlib

import pytest

from csi_vm import errors
from csi_vm.copy import endpoints, failures


def _src(tmp_path: pathlib.Path) -> endpoints.Endpoint:
    path = tmp_path / "src.img"
    path.write_bytes(bytes(4096))
    return endpoints.source(path)


def test_source_file(tmp_path: pathlib.Path) -> None:
    src = _src(tmp_path)
    assert (src.kind, src.size, src.exists) == (endpoints.Kind.FILE, 4096, True)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: None, errors.NotFound, "does not exist"),
        (lambda p: p.mkdir(), errors.InvalidInput, "is a directory"),
    ],
    ids=["missing", "directory"],
)
def test_bad_sources(tmp_path: pathlib.Path, make: object, error: type, match: str) -> None:
    path = tmp_path / "x"
    make(path)  # type: ignore[operator]
    with pytest.raises(error, match=match):
        endpoints.source(path)


def test_new_target(tmp_path: pathlib.Path) -> None:
    src = _src(tmp_path)
    dst = endpoints.target(tmp_path / "new.img", src=src, overwrite=False)
    assert (dst.exists, dst.kind, dst.filesystem) == (False, endpoints.Kind.FILE, src.filesystem)


def test_existing_target_needs_overwrite(tmp_path: pathlib.Path) -> None:
    src = _src(tmp_path)
    (tmp_path / "old.img").write_bytes(b"x")
    with pytest.raises(errors.AlreadyExists, match="--force"):
        endpoints.target(tmp_path / "old.img", src=src, overwrite=False)
    assert endpoints.target(tmp_path / "old.img", src=src, overwrite=True).exists


def test_target_is_not_the_source(tmp_path: pathlib.Path) -> None:
    src = _src(tmp_path)
    (tmp_path / "link.img").symlink_to(src.path)
    with pytest.raises(errors.InvalidInput, match="the same file"):
        endpoints.target(tmp_path / "link.img", src=src, overwrite=True)


def test_target_directory_must_exist(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.NotFound, match="target directory"):
        endpoints.target(tmp_path / "no" / "t.img", src=_src(tmp_path), overwrite=False)


@pytest.mark.parametrize(
    ("code", "error", "match"),
    [
        (errno.ENOSPC, errors.OutOfRange, "no space left while copying /t"),
        (errno.EDQUOT, errors.OutOfRange, "no space left"),
        (errno.ENOENT, errors.NotFound, "no such file"),
        (errno.EACCES, errors.Rejected, "Permission denied"),
        (errno.EBUSY, errors.Rejected, "in use"),
        (errno.EIO, errors.OperationFailed, "Input/output error"),
    ],
    ids=["enospc", "edquot", "enoent", "eacces", "ebusy", "eio"],
)
def test_translate(code: int, error: type, match: str) -> None:
    err = failures.translate(OSError(code, "x"), path=pathlib.Path("/t"), doing="copying")
    assert type(err) is error
    assert match in str(err)
