"""Bad requests get the right gRPC status and a message naming the field.

One driver serves the whole table; afterwards it must still be alive and its
state unchanged (no crash, no half-made object).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Iterator

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.localdriver import limits
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Code = grpc.StatusCode
VolumeSource = pb.VolumeContentSource.VolumeSource
SnapshotSource = pb.VolumeContentSource.SnapshotSource
MISSING_VOL = "vol-" + "0" * 32
MISSING_SNAP = "snap-" + "0" * 32


@dataclasses.dataclass(frozen=True)
class World:
    stubs: csi.Stubs
    volume_id: str
    snapshot_id: str
    state_dir: pathlib.Path
    node_dir: pathlib.Path

    @property
    def c(self) -> csi.pbg.ControllerStub:
        return self.stubs.controller

    @property
    def n(self) -> csi.pbg.NodeStub:
        return self.stubs.node


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("bad-input")
    drv = driverproc.start_driver(tmp / "driver")
    stubs = csi.connect(drv.endpoint)
    vol = csi.create_volume(stubs, "existing", size=8 * csi.MiB)
    snap = csi.create_snapshot(stubs, "existing-snap", vol.volume_id)
    (tmp / "node").mkdir()
    yield World(stubs, vol.volume_id, snap.snapshot_id, drv.state_dir, tmp / "node")
    stubs.close()
    drv.stop()


def _create(**fields: object) -> pb.CreateVolumeRequest:
    fields.setdefault("name", "bad-input-volume")
    fields.setdefault("volume_capabilities", [csi.mount_cap()])
    return pb.CreateVolumeRequest(**fields)  # type: ignore[arg-type]


def _sized(required: int, limit: int = 0) -> pb.CreateVolumeRequest:
    return _create(capacity_range=pb.CapacityRange(required_bytes=required, limit_bytes=limit))


def _cap_without_mode() -> pb.VolumeCapability:
    return pb.VolumeCapability(mount=pb.VolumeCapability.MountVolume())


def _stage(w: World, path: str, **fields: object) -> object:
    fields.setdefault("volume_id", w.volume_id)
    fields.setdefault("volume_capability", csi.mount_cap())
    return w.n.NodeStageVolume(pb.NodeStageVolumeRequest(staging_target_path=path, **fields))  # type: ignore[arg-type]


def _publish(w: World, target: str, **fields: object) -> object:
    fields.setdefault("volume_id", w.volume_id)
    fields.setdefault("volume_capability", csi.mount_cap())
    fields.setdefault("staging_target_path", str(w.node_dir / "staging"))
    return w.n.NodePublishVolume(pb.NodePublishVolumeRequest(target_path=target, **fields))  # type: ignore[arg-type]


def _beyond_free(w: World) -> int:
    """A size just above the free space GetCapacity reports (within the driver's maximum)."""
    free = w.c.GetCapacity(pb.GetCapacityRequest()).available_capacity
    return min(free + csi.GiB, limits.MAXIMUM_VOLUME_BYTES)


@dataclasses.dataclass(frozen=True)
class Case:
    call: Callable[[World], object]
    code: grpc.StatusCode
    says: str  # a fragment the status message must contain (the field, usually)


CASES: dict[str, Case] = {
    # --- CreateVolume ----------------------------------------------------------------
    "create-empty-name": Case(
        lambda w: w.c.CreateVolume(_create(name="")), Code.INVALID_ARGUMENT, "name"
    ),
    "create-long-name": Case(
        lambda w: w.c.CreateVolume(_create(name="x" * 129)), Code.INVALID_ARGUMENT, "128 bytes"
    ),
    "create-control-char": Case(
        lambda w: w.c.CreateVolume(_create(name="a\x07b")), Code.INVALID_ARGUMENT, "control"
    ),
    "create-no-capabilities": Case(
        lambda w: w.c.CreateVolume(_create(volume_capabilities=[])),
        Code.INVALID_ARGUMENT,
        "volume_capabilities",
    ),
    "create-no-access-type": Case(
        lambda w: w.c.CreateVolume(
            _create(
                volume_capabilities=[
                    pb.VolumeCapability(access_mode=pb.VolumeCapability.AccessMode(mode=1))
                ]
            )
        ),
        Code.INVALID_ARGUMENT,
        "access_type",
    ),
    "create-no-access-mode": Case(
        lambda w: w.c.CreateVolume(_create(volume_capabilities=[_cap_without_mode()])),
        Code.INVALID_ARGUMENT,
        "access_mode",
    ),
    "create-unknown-mode": Case(
        lambda w: w.c.CreateVolume(_create(volume_capabilities=[csi.mount_cap(mode=42)])),
        Code.INVALID_ARGUMENT,
        "access_mode.mode",
    ),
    "create-mode-unknown-zero": Case(
        lambda w: w.c.CreateVolume(_create(volume_capabilities=[csi.mount_cap(mode=0)])),
        Code.INVALID_ARGUMENT,
        "UNKNOWN",
    ),
    "create-unknown-fs": Case(
        lambda w: w.c.CreateVolume(_create(volume_capabilities=[csi.mount_cap(fs_type="ntfs")])),
        Code.INVALID_ARGUMENT,
        "fs_type",
    ),
    "create-negative-size": Case(
        lambda w: w.c.CreateVolume(_sized(-1)), Code.INVALID_ARGUMENT, "negative"
    ),
    "create-negative-limit": Case(
        lambda w: w.c.CreateVolume(_sized(0, -5)), Code.INVALID_ARGUMENT, "negative"
    ),
    "create-huge-size": Case(
        lambda w: w.c.CreateVolume(_sized(1 << 62)), Code.OUT_OF_RANGE, "capacity_range"
    ),
    "create-above-free-space": Case(
        lambda w: w.c.CreateVolume(_sized(_beyond_free(w))), Code.OUT_OF_RANGE, "capacity_range"
    ),
    "create-limit-below-required": Case(
        lambda w: w.c.CreateVolume(_sized(2 * csi.MiB, csi.MiB)),
        Code.INVALID_ARGUMENT,
        "limit_bytes",
    ),
    "create-limit-too-small": Case(
        lambda w: w.c.CreateVolume(_sized(0, 1000)), Code.OUT_OF_RANGE, "capacity_range"
    ),
    "create-xfs-too-small": Case(
        lambda w: w.c.CreateVolume(
            _create(
                capacity_range=pb.CapacityRange(limit_bytes=100 * csi.MiB),
                volume_capabilities=[csi.mount_cap(fs_type="xfs")],
            )
        ),
        Code.OUT_OF_RANGE,
        "capacity_range",
    ),
    "create-from-missing-snapshot": Case(
        lambda w: w.c.CreateVolume(
            _create(
                volume_content_source=pb.VolumeContentSource(
                    snapshot=SnapshotSource(snapshot_id=MISSING_SNAP)
                )
            )
        ),
        Code.NOT_FOUND,
        "snapshot",
    ),
    "create-from-garbage-volume-id": Case(
        lambda w: w.c.CreateVolume(
            _create(
                volume_content_source=pb.VolumeContentSource(
                    volume=VolumeSource(volume_id="../../etc/passwd")
                )
            )
        ),
        Code.NOT_FOUND,
        "volume_content_source.volume",
    ),
    "create-unknown-mutable": Case(
        lambda w: w.c.CreateVolume(_create(mutable_parameters={"speed": "ludicrous"})),
        Code.INVALID_ARGUMENT,
        "mutable_parameters",
    ),
    "create-elsewhere": Case(
        lambda w: w.c.CreateVolume(
            _create(
                accessibility_requirements=pb.TopologyRequirement(
                    requisite=[pb.Topology(segments={"csi-vm.local/node": "node-z"})]
                )
            )
        ),
        Code.RESOURCE_EXHAUSTED,
        "accessibility_requirements",
    ),
    "create-existing-name-other-size": Case(
        lambda w: w.c.CreateVolume(
            _create(name="existing", capacity_range=pb.CapacityRange(required_bytes=64 * csi.MiB))
        ),
        Code.ALREADY_EXISTS,
        "existing",
    ),
    # --- other controller RPCs -------------------------------------------------------
    "delete-empty-id": Case(
        lambda w: w.c.DeleteVolume(pb.DeleteVolumeRequest()), Code.INVALID_ARGUMENT, "volume_id"
    ),
    "publish-missing-volume": Case(
        lambda w: w.c.ControllerPublishVolume(
            pb.ControllerPublishVolumeRequest(
                volume_id=MISSING_VOL, node_id="node-a", volume_capability=csi.mount_cap()
            )
        ),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "publish-missing-node": Case(
        lambda w: w.c.ControllerPublishVolume(
            pb.ControllerPublishVolumeRequest(
                volume_id=w.volume_id, node_id="node-z", volume_capability=csi.mount_cap()
            )
        ),
        Code.NOT_FOUND,
        "node_id",
    ),
    "publish-empty-node": Case(
        lambda w: w.c.ControllerPublishVolume(
            pb.ControllerPublishVolumeRequest(
                volume_id=w.volume_id, volume_capability=csi.mount_cap()
            )
        ),
        Code.INVALID_ARGUMENT,
        "node_id",
    ),
    "publish-no-capability": Case(
        lambda w: w.c.ControllerPublishVolume(
            pb.ControllerPublishVolumeRequest(volume_id=w.volume_id, node_id="node-a")
        ),
        Code.INVALID_ARGUMENT,
        "volume_capability",
    ),
    "validate-missing-volume": Case(
        lambda w: w.c.ValidateVolumeCapabilities(
            pb.ValidateVolumeCapabilitiesRequest(
                volume_id=MISSING_VOL, volume_capabilities=[csi.mount_cap()]
            )
        ),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "validate-no-capabilities": Case(
        lambda w: w.c.ValidateVolumeCapabilities(
            pb.ValidateVolumeCapabilitiesRequest(volume_id=w.volume_id)
        ),
        Code.INVALID_ARGUMENT,
        "volume_capabilities",
    ),
    "expand-missing-volume": Case(
        lambda w: w.c.ControllerExpandVolume(
            pb.ControllerExpandVolumeRequest(
                volume_id=MISSING_VOL, capacity_range=pb.CapacityRange(required_bytes=csi.GiB)
            )
        ),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "expand-no-capacity": Case(
        lambda w: w.c.ControllerExpandVolume(
            pb.ControllerExpandVolumeRequest(volume_id=w.volume_id)
        ),
        Code.INVALID_ARGUMENT,
        "capacity_range",
    ),
    "expand-shrink": Case(
        lambda w: w.c.ControllerExpandVolume(
            pb.ControllerExpandVolumeRequest(
                volume_id=w.volume_id, capacity_range=pb.CapacityRange(limit_bytes=csi.MiB)
            )
        ),
        Code.OUT_OF_RANGE,
        "shrink",
    ),
    "modify-unknown-parameter": Case(
        lambda w: w.c.ControllerModifyVolume(
            pb.ControllerModifyVolumeRequest(
                volume_id=w.volume_id, mutable_parameters={"iops": "9000"}
            )
        ),
        Code.INVALID_ARGUMENT,
        "iops",
    ),
    "modify-bad-value": Case(
        lambda w: w.c.ControllerModifyVolume(
            pb.ControllerModifyVolumeRequest(
                volume_id=w.volume_id, mutable_parameters={"tier": "gold"}
            )
        ),
        Code.INVALID_ARGUMENT,
        "tier",
    ),
    "modify-nothing": Case(
        lambda w: w.c.ControllerModifyVolume(
            pb.ControllerModifyVolumeRequest(volume_id=w.volume_id)
        ),
        Code.INVALID_ARGUMENT,
        "mutable_parameters",
    ),
    "get-missing-volume": Case(
        lambda w: w.c.ControllerGetVolume(pb.ControllerGetVolumeRequest(volume_id=MISSING_VOL)),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "list-bad-token": Case(
        lambda w: w.c.ListVolumes(pb.ListVolumesRequest(starting_token="not-a-token")),
        Code.ABORTED,
        "starting_token",
    ),
    "list-negative-max": Case(
        lambda w: w.c.ListVolumes(pb.ListVolumesRequest(max_entries=-1)),
        Code.INVALID_ARGUMENT,
        "max_entries",
    ),
    "snapshot-empty-name": Case(
        lambda w: w.c.CreateSnapshot(pb.CreateSnapshotRequest(source_volume_id=w.volume_id)),
        Code.INVALID_ARGUMENT,
        "name",
    ),
    "snapshot-empty-source": Case(
        lambda w: w.c.CreateSnapshot(pb.CreateSnapshotRequest(name="s")),
        Code.INVALID_ARGUMENT,
        "source_volume_id",
    ),
    "snapshot-missing-source": Case(
        lambda w: w.c.CreateSnapshot(
            pb.CreateSnapshotRequest(name="s", source_volume_id=MISSING_VOL)
        ),
        Code.NOT_FOUND,
        "source_volume_id",
    ),
    "snapshot-name-for-other-volume": Case(
        lambda w: w.c.CreateSnapshot(
            pb.CreateSnapshotRequest(name="existing-snap", source_volume_id=MISSING_VOL)
        ),
        Code.ALREADY_EXISTS,
        "existing-snap",
    ),
    "get-missing-snapshot": Case(
        lambda w: w.c.GetSnapshot(pb.GetSnapshotRequest(snapshot_id=MISSING_SNAP)),
        Code.NOT_FOUND,
        "snapshot_id",
    ),
    "list-snapshots-bad-token": Case(
        lambda w: w.c.ListSnapshots(pb.ListSnapshotsRequest(starting_token="999999999")),
        Code.ABORTED,
        "starting_token",
    ),
    # --- node ------------------------------------------------------------------------
    "stage-empty-path": Case(lambda w: _stage(w, ""), Code.INVALID_ARGUMENT, "staging_target_path"),
    "stage-relative-path": Case(
        lambda w: _stage(w, "relative/staging"), Code.INVALID_ARGUMENT, "absolute"
    ),
    "stage-inside-state-dir": Case(
        lambda w: _stage(w, str(w.state_dir / "volumes")), Code.INVALID_ARGUMENT, "state directory"
    ),
    "stage-dotdot-into-state-dir": Case(
        lambda w: _stage(w, str(w.state_dir / "x" / ".." / "snapshots")),
        Code.INVALID_ARGUMENT,
        "state directory",
    ),
    "stage-no-capability": Case(
        lambda w: w.n.NodeStageVolume(
            pb.NodeStageVolumeRequest(
                volume_id=w.volume_id, staging_target_path=str(w.node_dir / "s")
            )
        ),
        Code.INVALID_ARGUMENT,
        "volume_capability",
    ),
    "stage-missing-volume": Case(
        lambda w: _stage(w, str(w.node_dir / "s"), volume_id=MISSING_VOL),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "stage-empty-volume-id": Case(
        lambda w: _stage(w, str(w.node_dir / "s"), volume_id=""), Code.INVALID_ARGUMENT, "volume_id"
    ),
    "publish-empty-target": Case(lambda w: _publish(w, ""), Code.INVALID_ARGUMENT, "target_path"),
    "publish-relative-target": Case(
        lambda w: _publish(w, "target"), Code.INVALID_ARGUMENT, "absolute"
    ),
    "publish-target-in-state-dir": Case(
        lambda w: _publish(w, str(w.state_dir / "t")), Code.INVALID_ARGUMENT, "state directory"
    ),
    "publish-no-staging-path": Case(
        lambda w: _publish(w, str(w.node_dir / "t"), staging_target_path=""),
        Code.FAILED_PRECONDITION,
        "staging_target_path",
    ),
    "publish-not-staged": Case(
        lambda w: _publish(w, str(w.node_dir / "t")), Code.FAILED_PRECONDITION, "not staged"
    ),
    "node-publish-missing-volume": Case(
        lambda w: _publish(w, str(w.node_dir / "t"), volume_id=MISSING_VOL),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "unpublish-relative-target": Case(
        lambda w: w.n.NodeUnpublishVolume(
            pb.NodeUnpublishVolumeRequest(volume_id=w.volume_id, target_path="t")
        ),
        Code.INVALID_ARGUMENT,
        "absolute",
    ),
    "unpublish-missing-volume": Case(
        lambda w: w.n.NodeUnpublishVolume(
            pb.NodeUnpublishVolumeRequest(volume_id=MISSING_VOL, target_path=str(w.node_dir / "t"))
        ),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "unstage-empty-path": Case(
        lambda w: w.n.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id=w.volume_id)),
        Code.INVALID_ARGUMENT,
        "staging_target_path",
    ),
    "stats-missing-volume": Case(
        lambda w: w.n.NodeGetVolumeStats(
            pb.NodeGetVolumeStatsRequest(volume_id=MISSING_VOL, volume_path=str(w.node_dir))
        ),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "stats-unpublished-path": Case(
        lambda w: w.n.NodeGetVolumeStats(
            pb.NodeGetVolumeStatsRequest(volume_id=w.volume_id, volume_path=str(w.node_dir))
        ),
        Code.NOT_FOUND,
        "volume_path",
    ),
    "node-expand-unpublished-path": Case(
        lambda w: w.n.NodeExpandVolume(
            pb.NodeExpandVolumeRequest(volume_id=w.volume_id, volume_path=str(w.node_dir))
        ),
        Code.NOT_FOUND,
        "volume_path",
    ),
    # Nothing is ever staged or published at a relative path: NOT_FOUND, as
    # csi-sanity expects, and an unknown volume is NOT_FOUND before the path.
    "stats-relative-path": Case(
        lambda w: w.n.NodeGetVolumeStats(
            pb.NodeGetVolumeStatsRequest(volume_id=w.volume_id, volume_path="some/path")
        ),
        Code.NOT_FOUND,
        "volume_path",
    ),
    "node-expand-missing-volume-relative-path": Case(
        lambda w: w.n.NodeExpandVolume(
            pb.NodeExpandVolumeRequest(volume_id=MISSING_VOL, volume_path="some/path")
        ),
        Code.NOT_FOUND,
        "volume_id",
    ),
    "stats-empty-path": Case(
        lambda w: w.n.NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(volume_id=w.volume_id)),
        Code.INVALID_ARGUMENT,
        "volume_path",
    ),
    # --- group snapshots and snapshot metadata -----------------------------------------
    "group-empty-name": Case(
        lambda w: w.stubs.group.CreateVolumeGroupSnapshot(
            pb.CreateVolumeGroupSnapshotRequest(source_volume_ids=[w.volume_id])
        ),
        Code.INVALID_ARGUMENT,
        "name",
    ),
    "group-no-sources": Case(
        lambda w: w.stubs.group.CreateVolumeGroupSnapshot(
            pb.CreateVolumeGroupSnapshotRequest(name="g")
        ),
        Code.INVALID_ARGUMENT,
        "source_volume_ids",
    ),
    "group-duplicate-source": Case(
        lambda w: w.stubs.group.CreateVolumeGroupSnapshot(
            pb.CreateVolumeGroupSnapshotRequest(
                name="g", source_volume_ids=[w.volume_id, w.volume_id]
            )
        ),
        Code.INVALID_ARGUMENT,
        "more than once",
    ),
    "group-missing-source": Case(
        lambda w: w.stubs.group.CreateVolumeGroupSnapshot(
            pb.CreateVolumeGroupSnapshotRequest(name="g", source_volume_ids=[MISSING_VOL])
        ),
        Code.NOT_FOUND,
        "source_volume_ids",
    ),
    "group-get-missing": Case(
        lambda w: w.stubs.group.GetVolumeGroupSnapshot(
            pb.GetVolumeGroupSnapshotRequest(
                group_snapshot_id="group-" + "0" * 32, snapshot_ids=[MISSING_SNAP]
            )
        ),
        Code.NOT_FOUND,
        "group_snapshot_id",
    ),
    "allocated-missing-snapshot": Case(
        lambda w: list(
            w.stubs.metadata.GetMetadataAllocated(
                pb.GetMetadataAllocatedRequest(snapshot_id=MISSING_SNAP)
            )
        ),
        Code.NOT_FOUND,
        "snapshot_id",
    ),
    "allocated-negative-offset": Case(
        lambda w: list(
            w.stubs.metadata.GetMetadataAllocated(
                pb.GetMetadataAllocatedRequest(snapshot_id=w.snapshot_id, starting_offset=-1)
            )
        ),
        Code.OUT_OF_RANGE,
        "starting_offset",
    ),
    "delta-beyond-end": Case(
        lambda w: list(
            w.stubs.metadata.GetMetadataDelta(
                pb.GetMetadataDeltaRequest(
                    base_snapshot_id=w.snapshot_id,
                    target_snapshot_id=w.snapshot_id,
                    starting_offset=1 << 40,
                )
            )
        ),
        Code.OUT_OF_RANGE,
        "starting_offset",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_gets_status_and_clear_message(world: World, case: Case) -> None:
    code, message = csi.code_of(lambda: case.call(world))
    assert code == case.code, message
    assert case.says in message, f"{message!r} should mention {case.says!r}"


def test_driver_survives_the_table_unchanged(world: World) -> None:
    """Runs last in this module: nothing above created or lost an object."""
    assert csi.list_volume_ids(world.stubs) == {world.volume_id}
    assert csi.list_snapshot_ids(world.stubs) == {world.snapshot_id}
    assert sorted(p.name for p in (world.state_dir / "volumes").iterdir()) == [
        f"{world.volume_id}.img"
    ]
