"""Protobuf messages to and from the typed models, in one place.

This is the only module besides the client that touches generated code; the
rest of csi-vm sees only `csi_vm.csi.models`.
"""

from __future__ import annotations

from typing import Any

from csi_vm.csi import models
from csi_vm.csi.pb import csi_pb2 as pb

_MODE_TO_PB = {
    mode: pb.VolumeCapability.AccessMode.Mode.Value(mode.value) for mode in models.AccessMode
}


def volume_capability(cap: models.VolumeCapability) -> Any:
    """The protobuf VolumeCapability for a model."""
    access = pb.VolumeCapability.AccessMode(mode=_MODE_TO_PB[cap.access])
    if cap.mode is models.VolumeMode.BLOCK:
        return pb.VolumeCapability(block=pb.VolumeCapability.BlockVolume(), access_mode=access)
    mount = pb.VolumeCapability.MountVolume(fs_type=cap.fs_type, mount_flags=list(cap.mount_flags))
    return pb.VolumeCapability(mount=mount, access_mode=access)


def content_source(source: models.ContentSource | None) -> Any:
    if source is None:
        return None
    if isinstance(source, models.VolumeSource):
        vol = pb.VolumeContentSource.VolumeSource(volume_id=source.volume_id)
        return pb.VolumeContentSource(volume=vol)
    snap = pb.VolumeContentSource.SnapshotSource(snapshot_id=source.snapshot_id)
    return pb.VolumeContentSource(snapshot=snap)


def topology_requirement(nodes: tuple[models.Topology, ...]) -> Any:
    if not nodes:
        return None
    tops = [pb.Topology(segments=dict(t.segments)) for t in nodes]
    return pb.TopologyRequirement(requisite=tops, preferred=tops)


def plugin_info(resp: Any) -> models.PluginInfo:
    return models.PluginInfo(
        name=resp.name, vendor_version=resp.vendor_version, manifest=dict(resp.manifest)
    )


def plugin_capabilities(resp: Any) -> models.PluginCapabilities:
    services: set[models.PluginService] = set()
    expansion: set[models.ExpansionType] = set()
    for cap in resp.capabilities:
        kind = cap.WhichOneof("type")
        if kind == "service":
            name = pb.PluginCapability.Service.Type.Name(cap.service.type)
            if name in models.PluginService.__members__:
                services.add(models.PluginService(name))
        elif kind == "volume_expansion":
            name = pb.PluginCapability.VolumeExpansion.Type.Name(cap.volume_expansion.type)
            if name in models.ExpansionType.__members__:
                expansion.add(models.ExpansionType(name))
    return models.PluginCapabilities(services=frozenset(services), expansion=frozenset(expansion))


def rpc_names(resp: Any, enum_type: Any) -> frozenset[str]:
    """Names of the RPC capabilities in a Controller/Node/GroupController answer.

    Unknown numbers (a newer spec than ours) are kept as ``UNKNOWN_<n>`` so that
    a report can still show them.
    """
    names: set[str] = set()
    for cap in resp.capabilities:
        if cap.WhichOneof("type") != "rpc":
            continue
        number = cap.rpc.type
        try:
            names.add(enum_type.Name(number))
        except ValueError:
            names.add(f"UNKNOWN_{number}")
    names.discard("UNKNOWN")
    return frozenset(names)


def volume(msg: Any) -> models.Volume:
    return models.Volume(
        volume_id=msg.volume_id,
        capacity_bytes=msg.capacity_bytes,
        volume_context=dict(msg.volume_context),
        content_source=_source_from_pb(msg) if msg.HasField("content_source") else None,
        accessible_topology=tuple(
            models.Topology(segments=dict(t.segments)) for t in msg.accessible_topology
        ),
    )


def _source_from_pb(msg: Any) -> models.ContentSource | None:
    src = msg.content_source
    kind = src.WhichOneof("type")
    if kind == "volume":
        return models.VolumeSource(volume_id=src.volume.volume_id)
    if kind == "snapshot":
        return models.SnapshotSource(snapshot_id=src.snapshot.snapshot_id)
    return None


def condition(status: Any) -> models.VolumeCondition | None:
    if not status.HasField("volume_condition"):
        return None
    cond = status.volume_condition
    return models.VolumeCondition(abnormal=cond.abnormal, message=cond.message)


def volume_entry(vol: Any, status: Any | None) -> models.VolumeEntry:
    if status is None:
        return models.VolumeEntry(volume=volume(vol))
    return models.VolumeEntry(
        volume=volume(vol),
        published_node_ids=tuple(status.published_node_ids),
        condition=condition(status),
    )


def snapshot(msg: Any) -> models.Snapshot:
    created = msg.creation_time.ToNanoseconds() if msg.HasField("creation_time") else 0
    return models.Snapshot(
        snapshot_id=msg.snapshot_id,
        source_volume_id=msg.source_volume_id,
        size_bytes=msg.size_bytes,
        ready_to_use=msg.ready_to_use,
        creation_time_ns=created,
        group_snapshot_id=msg.group_snapshot_id,
    )


def group_snapshot(msg: Any) -> models.GroupSnapshot:
    created = msg.creation_time.ToNanoseconds() if msg.HasField("creation_time") else 0
    return models.GroupSnapshot(
        group_snapshot_id=msg.group_snapshot_id,
        snapshots=tuple(snapshot(s) for s in msg.snapshots),
        ready_to_use=msg.ready_to_use,
        creation_time_ns=created,
    )


def node_info(resp: Any) -> models.NodeInfo:
    topo = None
    if resp.HasField("accessible_topology"):
        topo = models.Topology(segments=dict(resp.accessible_topology.segments))
    return models.NodeInfo(
        node_id=resp.node_id,
        max_volumes_per_node=resp.max_volumes_per_node,
        accessible_topology=topo,
    )


def volume_stats(resp: Any) -> models.VolumeStats:
    usage = tuple(
        models.VolumeUsage(
            unit=pb.VolumeUsage.Unit.Name(u.unit),
            available=u.available,
            total=u.total,
            used=u.used,
        )
        for u in resp.usage
    )
    return models.VolumeStats(usage=usage, condition=condition(resp))


def metadata_chunk(resp: Any) -> models.MetadataChunk:
    return models.MetadataChunk(
        fixed_length=resp.block_metadata_type == pb.BlockMetadataType.Value("FIXED_LENGTH"),
        volume_capacity_bytes=resp.volume_capacity_bytes,
        extents=tuple(
            models.Extent(offset=m.byte_offset, length=m.size_bytes) for m in resp.block_metadata
        ),
    )
