"""Node lifecycle on real loop devices and mounts: filesystems, read-only, expansion,
clones, snapshot metadata and group snapshots."""

from __future__ import annotations

import os
import pathlib

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.localdriver import hostops

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


class Node:
    """Stage/publish helper that tears down whatever it set up."""

    def __init__(self, stubs: csi.Stubs, paths: pathlib.Path) -> None:
        self.stubs, self.paths, self.live = stubs, paths, []

    def up(self, volume_id: str, cap: pb.VolumeCapability, *, readonly: bool = False) -> str:
        staging = self.paths / f"staging-{volume_id}"
        target = self.paths / f"target-{volume_id}-{len(self.live)}"
        staging.mkdir(exist_ok=True)
        csi.stage_and_publish(
            self.stubs,
            volume_id,
            staging=str(staging),
            target=str(target),
            cap=cap,
            readonly=readonly,
        )
        self.live.append((volume_id, str(staging), str(target)))
        return str(target)

    def down(self) -> None:
        """Unpublish every target, then unstage each volume once (CSI's order)."""
        stagings = {}
        while self.live:
            volume_id, staging, target = self.live.pop()
            self.stubs.node.NodeUnpublishVolume(
                pb.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=target)
            )
            stagings[volume_id] = staging
        for volume_id, staging in stagings.items():
            self.stubs.node.NodeUnstageVolume(
                pb.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=staging)
            )


def _statvfs_total(path: str) -> int:
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


def _write(path: str, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def _expand(stubs: csi.Stubs, volume_id: str, size: int, cap: pb.VolumeCapability) -> bool:
    answer = stubs.controller.ControllerExpandVolume(
        pb.ControllerExpandVolumeRequest(
            volume_id=volume_id,
            capacity_range=pb.CapacityRange(required_bytes=size),
            volume_capability=cap,
        )
    )
    assert answer.capacity_bytes == size
    return answer.node_expansion_required


@pytest.mark.parametrize("fs_type", ["ext4", "xfs"])
def test_filesystem_and_readonly_publish(
    stubs: csi.Stubs, paths: pathlib.Path, fs_type: str
) -> None:
    node = Node(stubs, paths)
    cap = csi.mount_cap(fs_type=fs_type)
    vol = csi.create_volume(stubs, f"fs-{fs_type}", size=320 * csi.MiB, cap=cap).volume_id
    target = node.up(vol, cap)
    pathlib.Path(target, "data").write_text(fs_type)
    readonly_target = node.up(vol, cap, readonly=True)
    assert pathlib.Path(readonly_target, "data").read_text() == fs_type
    with pytest.raises(OSError, match="Read-only"):
        pathlib.Path(readonly_target, "other").write_text("no")
    stats = stubs.node.NodeGetVolumeStats(
        pb.NodeGetVolumeStatsRequest(volume_id=vol, volume_path=target)
    )
    units = {u.unit for u in stats.usage}
    assert units == {pb.VolumeUsage.BYTES, pb.VolumeUsage.INODES}
    assert not stats.volume_condition.abnormal
    node.down()


def test_readonly_block_target_refuses_writes(stubs: csi.Stubs, paths: pathlib.Path) -> None:
    node = Node(stubs, paths)
    cap = csi.block_cap()
    vol = csi.create_volume(stubs, "ro-block", size=8 * csi.MiB, cap=cap).volume_id
    writable = node.up(vol, cap)
    _write(writable, 0, b"visible through both")
    readonly = node.up(vol, cap, readonly=True)
    with pytest.raises(PermissionError):  # a read-only loop device refuses the write
        _write(readonly, 0, b"must not land")
    fd = os.open(readonly, os.O_RDONLY)
    assert os.pread(fd, 20, 0) == b"visible through both"
    os.close(fd)
    node.down()


def test_offline_expansion_grows_the_filesystem_at_stage(
    stubs: csi.Stubs, paths: pathlib.Path
) -> None:
    node = Node(stubs, paths)
    cap = csi.mount_cap()
    vol = csi.create_volume(stubs, "offline", size=64 * csi.MiB, cap=cap).volume_id
    before = _statvfs_total(node.up(vol, cap))
    node.down()
    assert _expand(stubs, vol, 256 * csi.MiB, cap)
    after = _statvfs_total(node.up(vol, cap))
    assert after > 3 * before
    node.down()


def test_online_xfs_expansion(stubs: csi.Stubs, paths: pathlib.Path) -> None:
    node = Node(stubs, paths)
    cap = csi.mount_cap(fs_type="xfs")
    vol = csi.create_volume(stubs, "online-xfs", size=320 * csi.MiB, cap=cap).volume_id
    target = node.up(vol, cap)
    before = _statvfs_total(target)
    assert _expand(stubs, vol, 640 * csi.MiB, cap)
    answer = stubs.node.NodeExpandVolume(
        pb.NodeExpandVolumeRequest(volume_id=vol, volume_path=target, volume_capability=cap)
    )
    assert answer.capacity_bytes == 640 * csi.MiB
    assert _statvfs_total(target) > 1.8 * before
    node.down()


def test_online_ext4_expansion_grows_or_says_why(stubs: csi.Stubs, paths: pathlib.Path) -> None:
    """A mounted ext4 grows only with CAP_SYS_RESOURCE; without it the answer says so."""
    node = Node(stubs, paths)
    cap = csi.mount_cap(fs_type="ext4")
    vol = csi.create_volume(stubs, "online-ext4", size=64 * csi.MiB, cap=cap).volume_id
    target = node.up(vol, cap)
    before = _statvfs_total(target)
    assert _expand(stubs, vol, 128 * csi.MiB, cap)
    request = pb.NodeExpandVolumeRequest(volume_id=vol, volume_path=target, volume_capability=cap)
    if hostops.Host().can_resize_ext4_online():
        stubs.node.NodeExpandVolume(request)
        assert _statvfs_total(target) > 1.8 * before
    else:
        code, message = csi.code_of(lambda: stubs.node.NodeExpandVolume(request))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert "CAP_SYS_RESOURCE" in message
    node.down()


def test_online_block_expansion_needs_no_node_step(stubs: csi.Stubs, paths: pathlib.Path) -> None:
    node = Node(stubs, paths)
    cap = csi.block_cap()
    vol = csi.create_volume(stubs, "online-block", size=16 * csi.MiB, cap=cap).volume_id
    target = node.up(vol, cap)
    assert not _expand(stubs, vol, 48 * csi.MiB, cap)
    assert hostops.Host.device_bytes(target) == 48 * csi.MiB
    node.down()


def test_clone_into_larger_volume_keeps_data_and_grows(
    stubs: csi.Stubs, paths: pathlib.Path
) -> None:
    node = Node(stubs, paths)
    cap = csi.mount_cap()
    vol = csi.create_volume(stubs, "origin", size=32 * csi.MiB, cap=cap).volume_id
    pathlib.Path(node.up(vol, cap), "kept").write_text("cloned")
    source = pb.VolumeContentSource(volume=pb.VolumeContentSource.VolumeSource(volume_id=vol))
    clone = csi.create_volume(stubs, "clone", size=128 * csi.MiB, cap=cap, source=source)
    assert clone.content_source.volume.volume_id == vol
    target = node.up(clone.volume_id, cap)
    assert pathlib.Path(target, "kept").read_text() == "cloned"
    assert _statvfs_total(target) > 100 * csi.MiB
    node.down()


def test_snapshot_metadata_allocated_and_delta(stubs: csi.Stubs, paths: pathlib.Path) -> None:
    node = Node(stubs, paths)
    cap = csi.block_cap()
    vol = csi.create_volume(stubs, "tracked", size=32 * csi.MiB, cap=cap).volume_id
    target = node.up(vol, cap)
    _write(target, 0, b"a" * 65536)
    _write(target, 8 * csi.MiB, b"b" * 65536)
    base = csi.create_snapshot(stubs, "base", vol).snapshot_id
    _write(target, 8 * csi.MiB, b"c" * 65536)
    _write(target, 20 * csi.MiB, b"d" * 131072)
    later = csi.create_snapshot(stubs, "later", vol).snapshot_id
    node.down()

    allocated = [
        (b.byte_offset, b.size_bytes)
        for r in stubs.metadata.GetMetadataAllocated(
            pb.GetMetadataAllocatedRequest(snapshot_id=base)
        )
        for b in r.block_metadata
    ]
    covered = {o // 65536 for o, n in allocated for o in range(o, o + n, 65536)}
    assert {0, (8 * csi.MiB) // 65536} <= covered
    delta = [
        (b.byte_offset, b.size_bytes)
        for r in stubs.metadata.GetMetadataDelta(
            pb.GetMetadataDeltaRequest(
                base_snapshot_id=base, target_snapshot_id=later, max_results=1
            )
        )
        for b in r.block_metadata
    ]
    assert delta == [(8 * csi.MiB, 65536), (20 * csi.MiB, 131072)]


def test_group_snapshot_members_restore(stubs: csi.Stubs, paths: pathlib.Path) -> None:
    node = Node(stubs, paths)
    cap = csi.block_cap()
    vols = [
        csi.create_volume(stubs, f"g{i}", size=8 * csi.MiB, cap=cap).volume_id for i in range(2)
    ]
    for i, vol in enumerate(vols):
        _write(node.up(vol, cap), 0, f"member {i}".encode())
    group = stubs.group.CreateVolumeGroupSnapshot(
        pb.CreateVolumeGroupSnapshotRequest(name="pair", source_volume_ids=vols)
    ).group_snapshot
    node.down()
    assert group.ready_to_use and len(group.snapshots) == 2
    for snap in group.snapshots:
        assert snap.group_snapshot_id == group.group_snapshot_id
        source = pb.VolumeContentSource(
            snapshot=pb.VolumeContentSource.SnapshotSource(snapshot_id=snap.snapshot_id)
        )
        restored = csi.create_volume(
            stubs, f"r-{snap.snapshot_id}", size=8 * csi.MiB, cap=cap, source=source
        )
        fd = os.open(node.up(restored.volume_id, cap), os.O_RDONLY)
        assert os.pread(fd, 8, 0) == f"member {vols.index(snap.source_volume_id)}".encode()
        os.close(fd)
    node.down()
    code, _ = csi.code_of(
        lambda: stubs.controller.DeleteSnapshot(
            pb.DeleteSnapshotRequest(snapshot_id=group.snapshots[0].snapshot_id)
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    stubs.group.DeleteVolumeGroupSnapshot(
        pb.DeleteVolumeGroupSnapshotRequest(
            group_snapshot_id=group.group_snapshot_id,
            snapshot_ids=[s.snapshot_id for s in group.snapshots],
        )
    )
    assert csi.list_snapshot_ids(stubs) == set()


def test_block_only_volume_is_never_formatted(stubs: csi.Stubs, paths: pathlib.Path) -> None:
    """Mounting a volume made for block access would format it: refused, data intact."""
    node = Node(stubs, paths)
    vol = csi.create_volume(stubs, "raw", size=8 * csi.MiB, cap=csi.block_cap()).volume_id
    _write(node.up(vol, csi.block_cap()), 0, b"raw disk image")
    node.down()
    staging = paths / "as-mount"
    staging.mkdir()
    request = pb.NodeStageVolumeRequest(
        volume_id=vol, staging_target_path=str(staging), volume_capability=csi.mount_cap()
    )
    code, message = csi.code_of(lambda: stubs.node.NodeStageVolume(request))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "block access only" in message
    answer = stubs.controller.ValidateVolumeCapabilities(
        pb.ValidateVolumeCapabilitiesRequest(volume_id=vol, volume_capabilities=[csi.mount_cap()])
    )
    assert not answer.HasField("confirmed")
    fd = os.open(node.up(vol, csi.block_cap()), os.O_RDONLY)
    assert os.pread(fd, 14, 0) == b"raw disk image"
    os.close(fd)
    node.down()


def test_snapshot_of_a_mounted_filesystem_holds_unsynced_writes(
    stubs: csi.Stubs, paths: pathlib.Path
) -> None:
    """The driver freezes a mounted filesystem for the copy: no fsync needed by the writer."""
    node = Node(stubs, paths)
    cap = csi.mount_cap()
    vol = csi.create_volume(stubs, "busy-fs", size=32 * csi.MiB, cap=cap).volume_id
    pathlib.Path(node.up(vol, cap), "unsynced.txt").write_text("in the page cache only")
    snap = csi.create_snapshot(stubs, "busy-fs-snap", vol).snapshot_id
    node.down()
    source = pb.VolumeContentSource(
        snapshot=pb.VolumeContentSource.SnapshotSource(snapshot_id=snap)
    )
    restored = csi.create_volume(
        stubs, "busy-fs-restored", size=32 * csi.MiB, cap=cap, source=source
    )
    target = node.up(restored.volume_id, cap)
    assert pathlib.Path(target, "unsynced.txt").read_text() == "in the page cache only"
    node.down()
