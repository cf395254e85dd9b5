"""Reflink on XFS (reflink=1): the copy shares the source's blocks instead of copying them."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Callable

import pytest

from csi_vm.copy import engine, kernel, model

from .conftest import MiB, make_image, same_bytes

pytestmark = pytest.mark.integration

#: mkfs.xfs (xfsprogs 6.x) refuses filesystems under 300 MiB; the backing file is sparse.
XFS_SIZE = 512 * MiB
DATA_EXTENTS = 64


@pytest.fixture
def xfs(filesystem: Callable[..., pathlib.Path]) -> pathlib.Path:
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("needs mkfs.xfs (xfsprogs)")
    return filesystem(XFS_SIZE, "mkfs.xfs", "-q", "-f", "-m", "reflink=1")


def _free(path: pathlib.Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _shared_extents(path: pathlib.Path) -> int:
    out = subprocess.run(
        ["filefrag", "-v", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return sum(1 for line in out.splitlines() if "shared" in line)


@pytest.mark.parametrize("whole", [False, True], ids=["ranges", "whole-file"])
def test_reflink_shares_blocks(
    xfs: pathlib.Path, monkeypatch: pytest.MonkeyPatch, whole: bool
) -> None:
    src = make_image(xfs / "src.img", size=256 * MiB, extents=DATA_EXTENTS)
    if whole:
        # One data extent from 0 to EOF: one FICLONE instead of FICLONERANGE per piece.
        with src.open("r+b") as f:
            f.write(os.urandom(256 * MiB))
    os.sync()
    calls = {"clone_file": 0, "clone_range": 0}
    for name in calls:
        monkeypatch.setattr(kernel, name, _counted(calls, name, getattr(kernel, name)))
    free_before = _free(xfs)
    seen: list[tuple[model.Phase, int, int]] = []
    result = engine.copy(
        src, xfs / "dst.img", options=model.Options(verify=True, progress=lambda *e: seen.append(e))
    )
    os.sync()
    assert result.method is model.Method.REFLINK
    assert same_bytes(src, xfs / "dst.img", size=256 * MiB)
    # Shared blocks cost no space: a real copy of the data would take it all again.
    assert free_before - _free(xfs) < 4 * MiB
    assert _shared_extents(xfs / "dst.img") > 0
    assert seen[-1][0] is model.Phase.VERIFY
    assert (calls["clone_file"] == 1) is whole
    assert (calls["clone_range"] > 0) is not whole


def _counted(calls: dict[str, int], name: str, func: Callable[..., None]) -> Callable[..., None]:
    def wrapper(*args: object, **kwargs: object) -> None:
        calls[name] += 1
        func(*args, **kwargs)

    return wrapper
