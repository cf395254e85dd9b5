"""Capabilities agree with each other and with the RPCs the driver really answers.

An RPC whose capability is not advertised must answer UNIMPLEMENTED to a
well-formed request; an advertised one must be implemented (an empty request
then gets INVALID_ARGUMENT for its missing fields, or OK for list calls).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .caps import Caps

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code

# Identifiers that no driver has issued; requests using them are well-formed.
NO_VOLUME = "csi-conformance-no-such-volume"
NO_SNAPSHOT = "csi-conformance-no-such-snapshot"
NO_GROUP = "csi-conformance-no-such-group"


@dataclasses.dataclass(frozen=True)
class Rule:
    holds: Callable[[Caps], bool]
    why: str


RULES = {
    "online-expansion-has-an-expand-rpc": Rule(
        lambda c: (
            "ONLINE" not in c.expansion
            or c.controller_has("EXPAND_VOLUME")
            or c.node_has("EXPAND_VOLUME")
        ),
        "VolumeExpansion ONLINE requires controller or node EXPAND_VOLUME",
    ),
    "offline-expansion-has-controller-expand": Rule(
        lambda c: "OFFLINE" not in c.expansion or c.controller_has("EXPAND_VOLUME"),
        "VolumeExpansion OFFLINE requires controller EXPAND_VOLUME",
    ),
    "online-and-offline-do-not-contradict": Rule(
        lambda c: not ({"ONLINE", "OFFLINE"} <= c.expansion and c.controller_has("EXPAND_VOLUME")),
        "ONLINE says published volumes MUST be expandable by the controller, "
        "OFFLINE says they SHALL NOT be; a driver cannot declare both",
    ),
    "published-nodes-needs-publish": Rule(
        lambda c: (
            not c.controller_has("LIST_VOLUMES_PUBLISHED_NODES")
            or c.controller_has("PUBLISH_UNPUBLISH_VOLUME")
        ),
        "LIST_VOLUMES_PUBLISHED_NODES requires PUBLISH_UNPUBLISH_VOLUME",
    ),
    "publish-readonly-needs-publish": Rule(
        lambda c: (
            not c.controller_has("PUBLISH_READONLY") or c.controller_has("PUBLISH_UNPUBLISH_VOLUME")
        ),
        "PUBLISH_READONLY qualifies ControllerPublishVolume",
    ),
    "clone-needs-create-delete": Rule(
        lambda c: not c.controller_has("CLONE_VOLUME") or c.controller_has("CREATE_DELETE_VOLUME"),
        "cloning is a kind of CreateVolume",
    ),
    "snapshot-needs-create-delete": Rule(
        lambda c: not c.snapshots or c.controller_has("CREATE_DELETE_VOLUME"),
        "CREATE_DELETE_SNAPSHOT drivers must create volumes from snapshots",
    ),
    "node-topology-needs-constraints": Rule(
        lambda c: not c.node_topology or c.topology,
        "a node reporting accessible_topology must declare VOLUME_ACCESSIBILITY_CONSTRAINTS",
    ),
    "controller-service-has-capabilities": Rule(
        lambda c: not c.service_has("CONTROLLER_SERVICE") or bool(c.controller),
        "a controller service that offers nothing cannot be used",
    ),
}


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
def test_capability_rule(caps: Caps, rule: Rule) -> None:
    assert rule.holds(caps), rule.why


@dataclasses.dataclass(frozen=True)
class Offer:
    """One RPC: when it is offered, a request that must be UNIMPLEMENTED otherwise,
    and what an empty request gets when it is offered."""

    offered: Callable[[Caps], bool]
    call: Callable[[rpc.Csi, Caps, Path], Any]
    empty: Callable[[rpc.Csi], Any]
    empty_code: rpc.Code


def _ctl(name: str) -> Callable[[Caps], bool]:
    return lambda c: c.controller_has(name)


def _node(name: str) -> Callable[[Caps], bool]:
    return lambda c: c.node_has(name)


def _cap() -> csi_pb2.VolumeCapability:
    return build.capability()


OFFERS = {
    "ListVolumes": Offer(
        _ctl("LIST_VOLUMES"),
        lambda csi, c, p: csi.controller.ListVolumes(csi_pb2.ListVolumesRequest()),
        lambda csi: csi.controller.ListVolumes(csi_pb2.ListVolumesRequest()),
        Code.OK,
    ),
    "GetCapacity": Offer(
        _ctl("GET_CAPACITY"),
        lambda csi, c, p: csi.controller.GetCapacity(csi_pb2.GetCapacityRequest()),
        lambda csi: csi.controller.GetCapacity(csi_pb2.GetCapacityRequest()),
        Code.OK,
    ),
    "CreateSnapshot": Offer(
        _ctl("CREATE_DELETE_SNAPSHOT"),
        lambda csi, c, p: csi.controller.CreateSnapshot(
            csi_pb2.CreateSnapshotRequest(source_volume_id=NO_VOLUME, name="csi-conformance-s")
        ),
        lambda csi: csi.controller.CreateSnapshot(csi_pb2.CreateSnapshotRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "DeleteSnapshot": Offer(
        _ctl("CREATE_DELETE_SNAPSHOT"),
        lambda csi, c, p: csi.controller.DeleteSnapshot(
            csi_pb2.DeleteSnapshotRequest(snapshot_id=NO_SNAPSHOT)
        ),
        lambda csi: csi.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "ListSnapshots": Offer(
        _ctl("LIST_SNAPSHOTS"),
        lambda csi, c, p: csi.controller.ListSnapshots(csi_pb2.ListSnapshotsRequest()),
        lambda csi: csi.controller.ListSnapshots(csi_pb2.ListSnapshotsRequest()),
        Code.OK,
    ),
    "GetSnapshot": Offer(
        _ctl("GET_SNAPSHOT"),
        lambda csi, c, p: csi.controller.GetSnapshot(
            csi_pb2.GetSnapshotRequest(snapshot_id=NO_SNAPSHOT)
        ),
        lambda csi: csi.controller.GetSnapshot(csi_pb2.GetSnapshotRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "ControllerPublishVolume": Offer(
        _ctl("PUBLISH_UNPUBLISH_VOLUME"),
        lambda csi, c, p: csi.controller.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest(
                volume_id=NO_VOLUME, node_id=c.node_id, volume_capability=_cap()
            )
        ),
        lambda csi: csi.controller.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest()
        ),
        Code.INVALID_ARGUMENT,
    ),
    "ControllerUnpublishVolume": Offer(
        _ctl("PUBLISH_UNPUBLISH_VOLUME"),
        lambda csi, c, p: csi.controller.ControllerUnpublishVolume(
            csi_pb2.ControllerUnpublishVolumeRequest(volume_id=NO_VOLUME, node_id=c.node_id)
        ),
        lambda csi: csi.controller.ControllerUnpublishVolume(
            csi_pb2.ControllerUnpublishVolumeRequest()
        ),
        Code.INVALID_ARGUMENT,
    ),
    "ControllerExpandVolume": Offer(
        _ctl("EXPAND_VOLUME"),
        lambda csi, c, p: csi.controller.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(
                volume_id=NO_VOLUME, capacity_range=build.capacity(required=c.volume_size * 2)
            )
        ),
        lambda csi: csi.controller.ControllerExpandVolume(csi_pb2.ControllerExpandVolumeRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "ControllerGetVolume": Offer(
        _ctl("GET_VOLUME"),
        lambda csi, c, p: csi.controller.ControllerGetVolume(
            csi_pb2.ControllerGetVolumeRequest(volume_id=NO_VOLUME)
        ),
        lambda csi: csi.controller.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "ControllerModifyVolume": Offer(
        _ctl("MODIFY_VOLUME"),
        lambda csi, c, p: csi.controller.ControllerModifyVolume(
            csi_pb2.ControllerModifyVolumeRequest(
                volume_id=NO_VOLUME, mutable_parameters={"csi-conformance": "x"}
            )
        ),
        lambda csi: csi.controller.ControllerModifyVolume(csi_pb2.ControllerModifyVolumeRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "NodeStageVolume": Offer(
        _node("STAGE_UNSTAGE_VOLUME"),
        lambda csi, c, p: csi.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id=NO_VOLUME, staging_target_path=str(p), volume_capability=_cap()
            )
        ),
        lambda csi: csi.node.NodeStageVolume(csi_pb2.NodeStageVolumeRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "NodeUnstageVolume": Offer(
        _node("STAGE_UNSTAGE_VOLUME"),
        lambda csi, c, p: csi.node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(volume_id=NO_VOLUME, staging_target_path=str(p))
        ),
        lambda csi: csi.node.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "NodeGetVolumeStats": Offer(
        lambda c: c.node_has("GET_VOLUME_STATS") or c.node_has("VOLUME_CONDITION"),
        lambda csi, c, p: csi.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id=NO_VOLUME, volume_path=str(p))
        ),
        lambda csi: csi.node.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "NodeExpandVolume": Offer(
        _node("EXPAND_VOLUME"),
        lambda csi, c, p: csi.node.NodeExpandVolume(
            csi_pb2.NodeExpandVolumeRequest(
                volume_id=NO_VOLUME,
                volume_path=str(p),
                capacity_range=build.capacity(required=c.volume_size * 2),
            )
        ),
        lambda csi: csi.node.NodeExpandVolume(csi_pb2.NodeExpandVolumeRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "GroupControllerGetCapabilities": Offer(
        lambda c: c.service_has("GROUP_CONTROLLER_SERVICE"),
        lambda csi, c, p: csi.group.GroupControllerGetCapabilities(
            csi_pb2.GroupControllerGetCapabilitiesRequest()
        ),
        lambda csi: csi.group.GroupControllerGetCapabilities(
            csi_pb2.GroupControllerGetCapabilitiesRequest()
        ),
        Code.OK,
    ),
    "CreateVolumeGroupSnapshot": Offer(
        lambda c: c.group_snapshots,
        lambda csi, c, p: csi.group.CreateVolumeGroupSnapshot(
            csi_pb2.CreateVolumeGroupSnapshotRequest(
                name="csi-conformance-g", source_volume_ids=[NO_VOLUME]
            )
        ),
        lambda csi: csi.group.CreateVolumeGroupSnapshot(csi_pb2.CreateVolumeGroupSnapshotRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "GetVolumeGroupSnapshot": Offer(
        lambda c: c.group_snapshots,
        lambda csi, c, p: csi.group.GetVolumeGroupSnapshot(
            csi_pb2.GetVolumeGroupSnapshotRequest(
                group_snapshot_id=NO_GROUP, snapshot_ids=[NO_SNAPSHOT]
            )
        ),
        lambda csi: csi.group.GetVolumeGroupSnapshot(csi_pb2.GetVolumeGroupSnapshotRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "DeleteVolumeGroupSnapshot": Offer(
        lambda c: c.group_snapshots,
        lambda csi, c, p: csi.group.DeleteVolumeGroupSnapshot(
            csi_pb2.DeleteVolumeGroupSnapshotRequest(
                group_snapshot_id=NO_GROUP, snapshot_ids=[NO_SNAPSHOT]
            )
        ),
        lambda csi: csi.group.DeleteVolumeGroupSnapshot(csi_pb2.DeleteVolumeGroupSnapshotRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "GetMetadataAllocated": Offer(
        lambda c: c.service_has("SNAPSHOT_METADATA_SERVICE"),
        lambda csi, c, p: csi.metadata.GetMetadataAllocated(
            csi_pb2.GetMetadataAllocatedRequest(snapshot_id=NO_SNAPSHOT)
        ),
        lambda csi: csi.metadata.GetMetadataAllocated(csi_pb2.GetMetadataAllocatedRequest()),
        Code.INVALID_ARGUMENT,
    ),
    "GetMetadataDelta": Offer(
        lambda c: c.service_has("SNAPSHOT_METADATA_SERVICE"),
        lambda csi, c, p: csi.metadata.GetMetadataDelta(
            csi_pb2.GetMetadataDeltaRequest(
                base_snapshot_id=NO_SNAPSHOT, target_snapshot_id=NO_SNAPSHOT + "-2"
            )
        ),
        lambda csi: csi.metadata.GetMetadataDelta(csi_pb2.GetMetadataDeltaRequest()),
        Code.INVALID_ARGUMENT,
    ),
}


@pytest.mark.parametrize("offer", OFFERS.values(), ids=OFFERS.keys())
def test_rpc_is_offered_exactly_when_advertised(
    csi: rpc.Csi, caps: Caps, offer: Offer, tmp_path: Path
) -> None:
    if not offer.offered(caps):
        with rpc.refused(Code.UNIMPLEMENTED):
            offer.call(csi, caps, tmp_path)
        return
    if offer.empty_code == Code.OK:
        offer.empty(csi)
        return
    with rpc.refused(offer.empty_code):
        offer.empty(csi)
