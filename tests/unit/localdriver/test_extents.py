"""Data extents, sparse copies and changed ranges on real (tmpfs or disk) files."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from csi_vm.localdriver import extents

BLOCK = extents.DELTA_BLOCK
MiB = 1 << 20


def _image(path: pathlib.Path, size: int, writes: dict[int, bytes]) -> pathlib.Path:
    with path.open("wb") as f:
        f.truncate(size)
        for offset, data in writes.items():
            f.seek(offset)
            f.write(data)
    return path


@pytest.fixture
def opened() -> Iterator[list[int]]:
    fds: list[int] = []
    yield fds
    for fd in fds:
        os.close(fd)


def _open(path: pathlib.Path, fds: list[int], flags: int = os.O_RDONLY) -> int:
    fds.append(os.open(path, flags))
    return fds[-1]


def test_data_extents_follow_writes(tmp_path: pathlib.Path, opened: list[int]) -> None:
    path = _image(tmp_path / "a", 16 * MiB, {0: b"x" * 4096, 8 * MiB: b"y" * 8192})
    found = list(extents.data_extents(_open(path, opened)))
    assert [o for o, _ in found] == [0, 8 * MiB]
    assert all(n >= 4096 for _, n in found)
    assert next(extents.data_extents(_open(path, opened), start=MiB))[0] == 8 * MiB


def test_empty_sparse_file_has_no_extents(tmp_path: pathlib.Path, opened: list[int]) -> None:
    path = _image(tmp_path / "a", 1 << 30, {})
    assert list(extents.data_extents(_open(path, opened))) == []


def test_copy_keeps_content_and_holes(tmp_path: pathlib.Path, opened: list[int]) -> None:
    src = _image(tmp_path / "src", 32 * MiB, {MiB: b"data" * 1024, 30 * MiB: b"tail"})
    dst = tmp_path / "dst"
    method = extents.copy_image(_open(src, opened), _open(dst, opened, os.O_RDWR | os.O_CREAT))
    assert method in {"reflink", "sparse"}
    assert dst.read_bytes() == src.read_bytes()
    assert os.stat(dst).st_blocks <= os.stat(src).st_blocks + 16


def test_changed_extents_merge_runs(tmp_path: pathlib.Path, opened: list[int]) -> None:
    base = _image(tmp_path / "base", 8 * MiB, {0: b"a" * BLOCK, 4 * MiB: b"b" * BLOCK})
    target = _image(
        tmp_path / "target",
        8 * MiB,
        {0: b"a" * BLOCK, 4 * MiB: b"c" * 2 * BLOCK, 6 * MiB: b"new"},
    )
    found = list(extents.changed_extents(_open(base, opened), _open(target, opened)))
    assert found == [(4 * MiB, 2 * BLOCK), (6 * MiB, BLOCK)]
    # Resuming mid-way skips what ends before the offset.
    resumed = extents.changed_extents(_open(base, opened), _open(target, opened), start=5 * MiB)
    assert list(resumed) == [(6 * MiB, BLOCK)]


def test_zeros_written_over_a_hole_are_no_change(tmp_path: pathlib.Path, opened: list[int]) -> None:
    base = _image(tmp_path / "base", 4 * MiB, {})
    target = _image(tmp_path / "target", 4 * MiB, {MiB: b"\0" * BLOCK})
    assert list(extents.changed_extents(_open(base, opened), _open(target, opened))) == []


def test_grown_target_compares_against_zeros(tmp_path: pathlib.Path, opened: list[int]) -> None:
    base = _image(tmp_path / "base", 2 * MiB, {})
    target = _image(tmp_path / "target", 4 * MiB, {3 * MiB: b"z"})
    found = list(extents.changed_extents(_open(base, opened), _open(target, opened)))
    assert found == [(3 * MiB, BLOCK)]


def test_merge() -> None:
    assert extents.merge([(10, 5), (0, 10), (20, 1), (15, 2)]) == [(0, 17), (20, 1)]
