"""State and data survive a driver restart (SIGTERM, and kill -9)."""

from __future__ import annotations

import os
import pathlib

import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PATTERN = b"csi-vm restart survival\n" * 1000


def _write(path: pathlib.Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: pathlib.Path, offset: int, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, offset)
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_volumes_snapshots_and_block_data_survive_restart(
    driver: driverproc.DriverProcess, paths: pathlib.Path, how: str
) -> None:
    stubs = csi.connect(driver.endpoint)
    cap = csi.block_cap()
    vol = csi.create_volume(stubs, "survivor", size=64 * csi.MiB, cap=cap)
    other = csi.create_volume(stubs, "bystander", size=8 * csi.MiB)
    staging, target = str(paths / "staging"), str(paths / "target")
    os.makedirs(staging)
    csi.stage_and_publish(stubs, vol.volume_id, staging=staging, target=target, cap=cap)
    _write(pathlib.Path(target), 5 * csi.MiB, PATTERN)
    snap = csi.create_snapshot(stubs, "survivor-snap", vol.volume_id)
    stubs.close()

    if how == "sigterm":
        driver.restart()
    else:
        driver.kill()
        driver.start()

    stubs = csi.connect(driver.endpoint)
    assert csi.list_volume_ids(stubs) == {vol.volume_id, other.volume_id}
    assert csi.list_snapshot_ids(stubs) == {snap.snapshot_id}
    assert _read(pathlib.Path(target), 5 * csi.MiB, len(PATTERN)) == PATTERN
    # The node records survived too: tear-down after the restart works.
    csi.unpublish_and_unstage(stubs, vol.volume_id, staging=staging, target=target)
    assert not os.path.exists(target)
    # The snapshot taken before the restart still holds the data.
    restore_from = pb.VolumeContentSource.SnapshotSource(snapshot_id=snap.snapshot_id)
    source = pb.VolumeContentSource(snapshot=restore_from)
    clone = csi.create_volume(stubs, "from-snap", size=64 * csi.MiB, cap=cap, source=source)
    clone_target = str(paths / "clone")
    clone_staging = str(paths / "clone-staging")
    os.makedirs(clone_staging)
    csi.stage_and_publish(
        stubs, clone.volume_id, staging=clone_staging, target=clone_target, cap=cap
    )
    assert _read(pathlib.Path(clone_target), 5 * csi.MiB, len(PATTERN)) == PATTERN
    csi.unpublish_and_unstage(stubs, clone.volume_id, staging=clone_staging, target=clone_target)
    stubs.close()


def test_filesystem_data_survives_restart(
    driver: driverproc.DriverProcess, paths: pathlib.Path
) -> None:
    stubs = csi.connect(driver.endpoint)
    cap = csi.mount_cap()
    vol = csi.create_volume(stubs, "fs-survivor", size=32 * csi.MiB, cap=cap)
    staging, target = str(paths / "staging"), str(paths / "target")
    os.makedirs(staging)
    csi.stage_and_publish(stubs, vol.volume_id, staging=staging, target=target, cap=cap)
    (pathlib.Path(target) / "note.txt").write_text("still here")
    csi.unpublish_and_unstage(stubs, vol.volume_id, staging=staging, target=target)
    stubs.close()

    driver.restart()

    stubs = csi.connect(driver.endpoint)
    csi.stage_and_publish(stubs, vol.volume_id, staging=staging, target=target, cap=cap)
    assert (pathlib.Path(target) / "note.txt").read_text() == "still here"
    csi.unpublish_and_unstage(stubs, vol.volume_id, staging=staging, target=target)
    stubs.close()
