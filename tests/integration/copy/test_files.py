"""File to file: only data is copied, the target stays sparse, the bytes match."""

from __future__ import annotations

import os
import pathlib

import pytest

from csi_vm import errors
from csi_vm.copy import engine, kernel, model

from .conftest import MiB, assert_same_allocation, make_image, same_bytes

pytestmark = pytest.mark.integration

SIZE = 256 * MiB


def _unsupported(*args: object, **kwargs: object) -> None:
    raise kernel.NotSupported("Operation not supported")


@pytest.mark.parametrize("forced", [None, model.Method.READWRITE], ids=["best", "readwrite"])
def test_sparse_copy_keeps_allocation(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, forced: model.Method | None
) -> None:
    if forced is model.Method.READWRITE:
        monkeypatch.setattr(kernel, "clone_range", _unsupported)
        monkeypatch.setattr(kernel, "clone_file", _unsupported)
        monkeypatch.setattr(kernel, "copy_range", _unsupported)
    src = make_image(tmp_path / "src.img", size=SIZE, extents=20)
    seen: list[tuple[model.Phase, int, int]] = []
    options = model.Options(verify=True, progress=lambda *e: seen.append(e))
    result = engine.copy(src, tmp_path / "dst.img", options=options)
    dst = tmp_path / "dst.img"
    assert same_bytes(src, dst, size=SIZE)
    assert dst.stat().st_size == SIZE
    assert_same_allocation(src, dst)
    assert result.allocated == result.copied == 20 * MiB
    assert result.verified
    if forced:
        assert result.method is forced
    copy_events = [e for e in seen if e[0] is model.Phase.COPY]
    assert copy_events[-1] == (model.Phase.COPY, 20 * MiB, 20 * MiB)


def test_zero_blocks_inside_data_are_not_written(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel, "copy_range", _unsupported)
    src = tmp_path / "src.img"
    with src.open("wb") as f:
        f.write(b"\x01" * MiB + bytes(4 * MiB) + b"\x02" * MiB)  # zeros written, allocated
    result = engine.copy(src, tmp_path / "dst.img", options=model.Options())
    assert result.method is model.Method.READWRITE
    assert result.copied == 2 * MiB
    assert (tmp_path / "dst.img").stat().st_blocks * 512 == 2 * MiB
    assert same_bytes(src, tmp_path / "dst.img", size=6 * MiB)


def test_empty_image_copies_only_its_size(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "src.img"
    src.touch()
    os.truncate(src, 64 * MiB)
    result = engine.copy(src, tmp_path / "dst.img", options=model.Options(verify=True))
    assert (result.method, result.copied) == (model.Method.NONE, 0)
    assert (tmp_path / "dst.img").stat().st_size == 64 * MiB


@pytest.mark.parametrize(
    ("min_size", "length"),
    [(96 * MiB, 96 * MiB), (8 * MiB, 32 * MiB)],
    ids=["a-larger-disk-gets-its-length", "a-longer-source-keeps-its-own"],
)
def test_a_target_file_is_at_least_min_size_long(
    tmp_path: pathlib.Path, min_size: int, length: int
) -> None:
    src = make_image(tmp_path / "src.img", size=32 * MiB, extents=4)
    dst = tmp_path / "dst.img"
    options = model.Options(verify=True, min_size=min_size)
    result = engine.copy(src, dst, options=options)
    assert dst.stat().st_size == length
    assert same_bytes(src, dst, size=32 * MiB)
    assert dst.read_bytes()[32 * MiB :] == bytes(length - 32 * MiB)  # a hole: zeros
    assert (result.verified, result.copied) == (True, 4 * MiB)


def test_overwrite_keeps_the_old_mode(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=8 * MiB, extents=2)
    dst = tmp_path / "dst.img"
    dst.write_bytes(b"old")
    dst.chmod(0o640)
    with pytest.raises(errors.AlreadyExists):
        engine.copy(src, dst, options=model.Options())
    engine.copy(src, dst, options=model.Options(overwrite=True))
    assert same_bytes(src, dst, size=8 * MiB)
    assert dst.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst.img", "src.img"]
