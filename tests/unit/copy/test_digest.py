"""Checksums of logical content: holes equal written zeros, any byte counts."""

from __future__ import annotations

import pathlib

import pytest

from csi_vm import errors
from csi_vm.copy import digest, model

MiB = 1 << 20
SIZE = 3 * digest.CHUNK + 4096  # a partial last chunk


def _image(path: pathlib.Path, writes: dict[int, bytes]) -> pathlib.Path:
    with path.open("wb") as f:
        f.truncate(SIZE)
        for offset, data in writes.items():
            f.seek(offset)
            f.write(data)
    return path


def test_holes_hash_like_written_zeros(tmp_path: pathlib.Path) -> None:
    sparse = _image(tmp_path / "a", {MiB: b"data"})
    dense = _image(tmp_path / "b", {0: bytes(SIZE)})
    dense_data = _image(dense, {MiB: b"data"})
    digest.check(sparse, dense_data, size=SIZE, options=model.Options())


@pytest.mark.parametrize(
    "offset", [0, digest.CHUNK - 1, SIZE - 1], ids=["first", "chunk-edge", "last"]
)
def test_one_byte_differs(tmp_path: pathlib.Path, offset: int) -> None:
    a = _image(tmp_path / "a", {MiB: b"data"})
    b = _image(tmp_path / "b", {MiB: b"data", offset: b"\x01"})
    with pytest.raises(errors.DataSafetyError, match="verification failed"):
        digest.check(a, b, size=SIZE, options=model.Options())


def test_verify_progress_covers_both_sides(tmp_path: pathlib.Path) -> None:
    a = _image(tmp_path / "a", {MiB: b"data"})
    b = _image(tmp_path / "b", {MiB: b"data"})
    seen: list[tuple[model.Phase, int, int]] = []
    digest.check(a, b, size=SIZE, options=model.Options(progress=lambda *e: seen.append(e)))
    assert seen[-1] == (model.Phase.VERIFY, 2 * digest.CHUNK, 2 * digest.CHUNK)
