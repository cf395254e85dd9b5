"""What the driver under test says it can do, read once per session.

Capabilities are kept as enum *names* so tests read like the spec
(``caps.controller_has("CLONE_VOLUME")``). Values the suite does not know are
kept as ``UNKNOWN(<n>)`` so the identity tests can flag them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import grpc

from csi_vm.csi.pb import csi_pb2

from . import rpc

MiB = 1024 * 1024

#: Size of the volumes the suite creates, unless the driver's minimum is larger.
#: Small enough to format and copy quickly, large enough for a filesystem.
DEFAULT_VOLUME_SIZE = 32 * MiB


def _names(enum: Any, values: Iterable[int]) -> frozenset[str]:
    out = set()
    for value in values:
        try:
            out.add(enum.Name(value))
        except ValueError:
            out.add(f"UNKNOWN({value})")
    return frozenset(out)


@dataclasses.dataclass(frozen=True)
class Caps:
    plugin_name: str
    vendor_version: str
    services: frozenset[str]
    expansion: frozenset[str]
    controller: frozenset[str]
    node: frozenset[str]
    group: frozenset[str]
    node_id: str
    node_topology: dict[str, str]
    volume_size: int

    def service_has(self, name: str) -> bool:
        return name in self.services

    def controller_has(self, name: str) -> bool:
        return name in self.controller

    def node_has(self, name: str) -> bool:
        return name in self.node

    def group_has(self, name: str) -> bool:
        return name in self.group

    @property
    def snapshots(self) -> bool:
        return self.controller_has("CREATE_DELETE_SNAPSHOT")

    @property
    def stage(self) -> bool:
        return self.node_has("STAGE_UNSTAGE_VOLUME")

    @property
    def group_snapshots(self) -> bool:
        return self.service_has("GROUP_CONTROLLER_SERVICE") and self.group_has(
            "CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT"
        )

    @property
    def topology(self) -> bool:
        return self.service_has("VOLUME_ACCESSIBILITY_CONSTRAINTS")


def discover(csi: rpc.Csi) -> Caps:
    plugin = csi.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest())
    plugin_caps = csi.identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest())
    services = [c.service.type for c in plugin_caps.capabilities if c.HasField("service")]
    expansion = [
        c.volume_expansion.type for c in plugin_caps.capabilities if c.HasField("volume_expansion")
    ]
    service_names = _names(csi_pb2.PluginCapability.Service.Type, services)
    controller: frozenset[str] = frozenset()
    if "CONTROLLER_SERVICE" in service_names:
        answer = csi.controller.ControllerGetCapabilities(
            csi_pb2.ControllerGetCapabilitiesRequest()
        )
        controller = _names(
            csi_pb2.ControllerServiceCapability.RPC.Type,
            [c.rpc.type for c in answer.capabilities],
        )
    group: frozenset[str] = frozenset()
    if "GROUP_CONTROLLER_SERVICE" in service_names:
        answer = csi.group.GroupControllerGetCapabilities(
            csi_pb2.GroupControllerGetCapabilitiesRequest()
        )
        group = _names(
            csi_pb2.GroupControllerServiceCapability.RPC.Type,
            [c.rpc.type for c in answer.capabilities],
        )
    node_answer = csi.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
    node = _names(
        csi_pb2.NodeServiceCapability.RPC.Type, [c.rpc.type for c in node_answer.capabilities]
    )
    info = csi.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    size = DEFAULT_VOLUME_SIZE
    if "GET_CAPACITY" in controller:
        capacity = csi.controller.GetCapacity(csi_pb2.GetCapacityRequest())
        if capacity.HasField("minimum_volume_size"):
            size = max(size, capacity.minimum_volume_size.value)
    return Caps(
        plugin_name=plugin.name,
        vendor_version=plugin.vendor_version,
        services=service_names,
        expansion=_names(csi_pb2.PluginCapability.VolumeExpansion.Type, expansion),
        controller=controller,
        node=node,
        group=group,
        node_id=info.node_id,
        node_topology=dict(info.accessible_topology.segments),
        volume_size=size,
    )


@dataclasses.dataclass(frozen=True)
class Probe:
    """Whether CreateVolume accepted a capability, and how it refused if not."""

    accepted: bool
    code: grpc.StatusCode
    details: str
