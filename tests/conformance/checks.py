"""Assertions several test modules make about what a driver returns."""

from __future__ import annotations

from csi_vm.csi.pb import csi_pb2

from .caps import Caps


def reachable_from_node(caps: Caps, volume: csi_pb2.Volume) -> None:
    """A volume with accessible_topology must be reachable from the node under test.

    The suite asks for the node's topology at CreateVolume; a topology is
    reachable when all its segments are among the node's segments.
    """
    if not volume.accessible_topology:
        return
    assert caps.topology, (
        "volume has accessible_topology but the plugin lacks VOLUME_ACCESSIBILITY_CONSTRAINTS"
    )
    node = set(caps.node_topology.items())
    reachable = [t for t in volume.accessible_topology if set(t.segments.items()) <= node]
    assert reachable, (
        f"volume {volume.volume_id} is accessible from "
        f"{[dict(t.segments) for t in volume.accessible_topology]}, "
        f"not from the node under test ({caps.node_topology})"
    )


def fits_range(volume: csi_pb2.Volume, capacity: csi_pb2.CapacityRange) -> None:
    """capacity_bytes honours the requested range; 0 means unknown and is allowed."""
    size = volume.capacity_bytes
    assert size >= 0, f"negative capacity {size}"
    if size == 0:
        return
    if capacity.required_bytes:
        assert size >= capacity.required_bytes, (
            f"capacity {size} below required_bytes {capacity.required_bytes}"
        )
    if capacity.limit_bytes:
        assert size <= capacity.limit_bytes, (
            f"capacity {size} above limit_bytes {capacity.limit_bytes}"
        )


def same_volume(first: csi_pb2.Volume, second: csi_pb2.Volume) -> None:
    assert second.volume_id == first.volume_id, "idempotent call returned another volume"
    assert second.capacity_bytes == first.capacity_bytes
    assert dict(second.volume_context) == dict(first.volume_context), (
        "volume_context of one volume must never change"
    )


def same_snapshot(first: csi_pb2.Snapshot, second: csi_pb2.Snapshot) -> None:
    assert second.snapshot_id == first.snapshot_id, "idempotent call returned another snapshot"
    assert second.source_volume_id == first.source_volume_id
    assert second.creation_time == first.creation_time, "creation_time of a snapshot changed"
