"""The copier: step down between methods, skip zeros, overwrite a used device."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

from csi_vm.copy import kernel, methods, model, plan

M = model.Method
MiB = 1 << 20


@pytest.mark.parametrize(
    ("same_fs", "files", "expected"),
    [
        (True, True, [M.REFLINK, M.COPY_FILE_RANGE, M.READWRITE]),
        (False, True, [M.COPY_FILE_RANGE, M.READWRITE]),
        (True, False, [M.READWRITE]),
    ],
    ids=["same-filesystem", "two-filesystems", "block-device"],
)
def test_candidates(same_fs: bool, files: bool, expected: list[model.Method]) -> None:
    assert methods.candidates(same_filesystem=same_fs, files=files) == expected


@pytest.fixture
def fds(tmp_path: pathlib.Path) -> Iterator[tuple[int, int]]:
    src = tmp_path / "src"
    with src.open("wb") as f:
        f.truncate(4 * MiB)
        f.seek(MiB)
        f.write(b"\x01" * plan.ZERO_BLOCK + bytes(plan.ZERO_BLOCK) + b"\x02" * plan.ZERO_BLOCK)
    src_fd = os.open(src, os.O_RDONLY)
    dst_fd = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT)
    os.ftruncate(dst_fd, 4 * MiB)
    yield src_fd, dst_fd
    os.close(src_fd)
    os.close(dst_fd)


def _unsupported(*args: object, **kwargs: object) -> None:
    raise kernel.NotSupported("Operation not supported")


def _copier(fds: tuple[int, int], *, sparse: bool = True) -> methods.Copier:
    return methods.Copier(
        src_fd=fds[0], dst_fd=fds[1], methods=list(methods._ORDER), sparse=sparse, piece=MiB
    )


def test_steps_down_to_readwrite(fds: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel, "clone_range", _unsupported)
    monkeypatch.setattr(kernel, "copy_range", _unsupported)
    copier = _copier(fds)
    written = copier.copy((MiB, MiB))
    assert copier.method is M.READWRITE
    # The zero block between the two data blocks is skipped.
    assert written == 2 * plan.ZERO_BLOCK
    assert os.pread(fds[1], 3 * plan.ZERO_BLOCK, MiB) == os.pread(fds[0], 3 * plan.ZERO_BLOCK, MiB)


def test_stops_at_the_first_method_that_works(
    fds: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kernel, "clone_range", _unsupported)
    copied: list[plan.Extent] = []
    monkeypatch.setattr(
        kernel, "copy_range", lambda s, d, *, offset, length: copied.append((offset, length))
    )
    copier = _copier(fds)
    assert copier.copy((0, MiB)) == MiB
    assert copier.method is M.COPY_FILE_RANGE
    assert copied == [(0, MiB)]


def test_clone_whole_falls_back(fds: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel, "clone_file", _unsupported)
    copier = _copier(fds)
    assert copier.clone_whole() is False
    assert copier.method is M.COPY_FILE_RANGE


def test_used_device_gets_zero_pieces_zeroed_and_data_pieces_whole(
    fds: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    zeroed: list[plan.Extent] = []
    monkeypatch.setattr(
        kernel, "zero_device_range", lambda fd, *, offset, length: zeroed.append((offset, length))
    )
    copier = methods.Copier(
        src_fd=fds[0], dst_fd=fds[1], methods=[M.READWRITE], sparse=False, piece=MiB
    )
    assert copier.copy((0, MiB)) == 0
    assert zeroed == [(0, MiB)]
    assert copier.copy((MiB, MiB)) == MiB
