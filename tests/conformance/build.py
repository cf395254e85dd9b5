"""Request pieces the tests share: capabilities, capacity ranges, topology."""

from __future__ import annotations

from csi_vm.csi.pb import csi_pb2

from .caps import Caps

Mode = csi_pb2.VolumeCapability.AccessMode.Mode

ACCESS_TYPES = ("mount", "block")


def capability(access: str = "mount", mode: str = "SINGLE_NODE_WRITER") -> csi_pb2.VolumeCapability:
    """A volume capability; `access` is "mount" or "block", `mode` an AccessMode name."""
    cap = csi_pb2.VolumeCapability(
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=Mode.Value(mode))
    )
    if access == "block":
        cap.block.SetInParent()
    elif access == "mount":
        cap.mount.SetInParent()
    else:
        raise ValueError(f"unknown access type {access!r}")
    return cap


def capacity(required: int = 0, limit: int = 0) -> csi_pb2.CapacityRange:
    return csi_pb2.CapacityRange(required_bytes=required, limit_bytes=limit)


def exact(size: int) -> csi_pb2.CapacityRange:
    return capacity(required=size, limit=size)


def topology_requirement(caps: Caps) -> csi_pb2.TopologyRequirement | None:
    """Ask for volumes reachable from the node under test, when the driver has topology."""
    if not caps.topology or not caps.node_topology:
        return None
    here = csi_pb2.Topology(segments=caps.node_topology)
    return csi_pb2.TopologyRequirement(requisite=[here], preferred=[here])


def create_request(
    caps: Caps,
    name: str,
    *,
    size: int | None = None,
    capabilities: list[csi_pb2.VolumeCapability] | None = None,
    source: csi_pb2.VolumeContentSource | None = None,
) -> csi_pb2.CreateVolumeRequest:
    request = csi_pb2.CreateVolumeRequest(
        name=name,
        capacity_range=capacity(required=size or caps.volume_size),
        volume_capabilities=capabilities or [capability()],
    )
    if source is not None:
        request.volume_content_source.CopyFrom(source)
    requirement = topology_requirement(caps)
    if requirement is not None:
        request.accessibility_requirements.CopyFrom(requirement)
    return request


def from_snapshot(snapshot_id: str) -> csi_pb2.VolumeContentSource:
    return csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot_id)
    )


def from_volume(volume_id: str) -> csi_pb2.VolumeContentSource:
    return csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=volume_id)
    )
