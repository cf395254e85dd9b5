"""Crash-safe image creation and the startup sweep."""

from __future__ import annotations

import fcntl
import os
import pathlib

import pytest

from csi_vm.localdriver import images


def test_create_commits_under_the_final_name(tmp_path: pathlib.Path) -> None:
    store = images.ImageStore(tmp_path, shared=False)
    final = store.volume_path("vol-1")
    with store.create(final) as image:
        os.ftruncate(image.fd, 1 << 20)
        assert not final.exists()
        image.commit_file()
    assert final.stat().st_size == 1 << 20
    assert os.listdir(store.volumes) == [final.name]


def test_failure_inside_create_leaves_nothing(tmp_path: pathlib.Path) -> None:
    store = images.ImageStore(tmp_path, shared=False)
    final = store.volume_path("vol-1")
    with pytest.raises(RuntimeError), store.create(final) as image:
        image.commit_file()
        raise RuntimeError("row insert failed")
    assert os.listdir(store.volumes) == []


def test_sweep_removes_leftovers_but_keeps_known_and_locked(tmp_path: pathlib.Path) -> None:
    store = images.ImageStore(tmp_path, shared=False)
    for name in ("vol-known.img", "vol-orphan.img", ".tmp-vol-x.img", "vol-busy.img"):
        (store.volumes / name).write_bytes(b"")
    (store.snapshots / "snap-orphan.img").write_bytes(b"")
    busy = os.open(store.volumes / "vol-busy.img", os.O_RDONLY)
    fcntl.flock(busy, fcntl.LOCK_EX)  # a creator still at work
    try:
        removed = store.sweep(is_known=lambda object_id: object_id == "vol-known")
    finally:
        os.close(busy)
    assert sorted(p.name for p in removed) == [
        ".tmp-vol-x.img",
        "snap-orphan.img",
        "vol-orphan.img",
    ]
    assert sorted(os.listdir(store.volumes)) == ["vol-busy.img", "vol-known.img"]


def test_shared_sweep_spares_young_temp_files(tmp_path: pathlib.Path) -> None:
    store = images.ImageStore(tmp_path, shared=True)
    (store.volumes / ".tmp-vol-new.img").write_bytes(b"")
    assert store.sweep(is_known=lambda _: False) == []


def test_grow_only_grows(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "img"
    path.write_bytes(b"\0" * 4096)
    images.ImageStore.grow(path, 8192)
    images.ImageStore.grow(path, 1024)
    assert path.stat().st_size == 8192
