"""Protobuf <-> driver models, at the gRPC boundary only.

Requests become `requests`/`model` objects (checked for the presence of
required sub-messages and for known enum values); core results become
protobuf responses. Secrets are dropped here and never reach the core.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import timestamp_pb2

from csi_vm import errors
from csi_vm.csi.pb import csi_pb2
from csi_vm.localdriver import model, requests
from csi_vm.localdriver.context import TOPOLOGY_KEY

_NS_PER_S = 1_000_000_000


def capability(pb: csi_pb2.VolumeCapability, *, field: str) -> model.Capability:
    kind = pb.WhichOneof("access_type")
    if kind is None:
        raise errors.InvalidInput(f"{field}.access_type: one of block or mount is required")
    if not pb.HasField("access_mode"):
        raise errors.InvalidInput(f"{field}.access_mode is required")
    try:
        mode = model.AccessMode(pb.access_mode.mode)
    except ValueError:
        raise errors.InvalidInput(
            f"{field}.access_mode.mode {pb.access_mode.mode} is not a CSI access mode"
        ) from None
    if mode == model.AccessMode.UNKNOWN:
        raise errors.InvalidInput(f"{field}.access_mode.mode must not be UNKNOWN")
    if kind == "block":
        return model.Capability(block=True, mode=mode)
    return model.Capability(
        block=False, mode=mode, fs_type=pb.mount.fs_type, mount_flags=tuple(pb.mount.mount_flags)
    )


def capabilities(
    pbs: Iterable[csi_pb2.VolumeCapability], *, field: str
) -> tuple[model.Capability, ...]:
    return tuple(capability(pb, field=f"{field}[{i}]") for i, pb in enumerate(pbs))


def optional_capability(
    present: bool, pb: csi_pb2.VolumeCapability, *, field: str
) -> model.Capability | None:
    return capability(pb, field=field) if present else None


def capacity(present: bool, pb: csi_pb2.CapacityRange) -> requests.CapacityRange | None:
    if not present:
        return None
    return requests.CapacityRange(required=pb.required_bytes, limit=pb.limit_bytes)


def source(present: bool, pb: csi_pb2.VolumeContentSource) -> model.Source | None:
    if not present:
        return None
    kind = pb.WhichOneof("type")
    if kind == "snapshot":
        return model.Source("snapshot", pb.snapshot.snapshot_id)
    if kind == "volume":
        return model.Source("volume", pb.volume.volume_id)
    raise errors.InvalidInput("volume_content_source: one of snapshot or volume is required")


def create_volume(pb: csi_pb2.CreateVolumeRequest) -> requests.CreateVolume:
    topology = pb.accessibility_requirements
    return requests.CreateVolume(
        name=pb.name,
        capacity=capacity(pb.HasField("capacity_range"), pb.capacity_range)
        or requests.CapacityRange(),
        caps=capabilities(pb.volume_capabilities, field="volume_capabilities"),
        parameters=dict(pb.parameters),
        mutable=dict(pb.mutable_parameters),
        source=source(pb.HasField("volume_content_source"), pb.volume_content_source),
        requisite=tuple(dict(t.segments) for t in topology.requisite),
        preferred=tuple(dict(t.segments) for t in topology.preferred),
    )


def timestamp(ns: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=ns // _NS_PER_S, nanos=ns % _NS_PER_S)


def volume(vol: model.Volume) -> csi_pb2.Volume:
    pb = csi_pb2.Volume(capacity_bytes=vol.size, volume_id=vol.volume_id)
    if vol.source and vol.source.kind == "snapshot":
        pb.content_source.snapshot.snapshot_id = vol.source.object_id
    elif vol.source:
        pb.content_source.volume.volume_id = vol.source.object_id
    if vol.pinned_node:
        pb.accessible_topology.add().segments[TOPOLOGY_KEY] = vol.pinned_node
    return pb


def snapshot(snap: model.Snapshot) -> csi_pb2.Snapshot:
    return csi_pb2.Snapshot(
        size_bytes=snap.size,
        snapshot_id=snap.snapshot_id,
        source_volume_id=snap.source_volume_id,
        creation_time=timestamp(snap.created_ns),
        ready_to_use=True,
        group_snapshot_id=snap.group_id or "",
    )


def group(grp: model.GroupSnapshot) -> csi_pb2.VolumeGroupSnapshot:
    return csi_pb2.VolumeGroupSnapshot(
        group_snapshot_id=grp.group_id,
        snapshots=[snapshot(m) for m in grp.members],
        creation_time=timestamp(grp.created_ns),
        ready_to_use=True,
    )


def condition(cond: model.Condition) -> csi_pb2.VolumeCondition:
    return csi_pb2.VolumeCondition(abnormal=cond.abnormal, message=cond.message)
