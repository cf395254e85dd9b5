"""The declared half of a probe: plugin info and every capability enum.

Reading capabilities creates nothing, so this is safe on production storage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

from capabilities import model
from csi_vm import errors
from csi_vm.csi import client as csi_client
from csi_vm.csi import models

T = TypeVar("T")
F = model.Feature
C = models.ControllerCapability
N = models.NodeCapability
S = models.PluginService

# Features CSI has no capability bit for: only a test tells.
UNDECLARABLE = frozenset(
    {F.BLOCK, F.FILESYSTEM, F.RWX_BLOCK, F.RWX_FILESYSTEM, F.MULTI_NODE_SHARED}
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Declared:
    info: models.PluginInfo
    plugin: models.PluginCapabilities
    controller: frozenset[models.ControllerCapability]
    node: dict[str, frozenset[models.NodeCapability]]
    group: frozenset[str]

    def has_node(self, cap: models.NodeCapability) -> bool:
        return any(cap in caps for caps in self.node.values())

    def raw(self) -> dict[str, list[str]]:
        raw: dict[str, list[str]] = {
            "plugin": sorted(self.plugin.services),
            "expansion": sorted(self.plugin.expansion),
            "controller": sorted(self.controller),
            "group_controller": sorted(self.group),
        }
        for name, caps in self.node.items():
            raw[f"node:{name}"] = sorted(caps)
        return raw

    def features(self) -> dict[model.Feature, bool | None]:
        plugin, ctrl = self.plugin, self.controller
        has_group = S.GROUP_CONTROLLER_SERVICE in plugin.services
        declared: dict[model.Feature, bool | None] = {
            F.SNAPSHOT: C.CREATE_DELETE_SNAPSHOT in ctrl,
            F.CLONE: C.CLONE_VOLUME in ctrl,
            # Restoring needs no capability of its own beyond snapshots.
            F.RESTORE_FROM_SNAPSHOT: C.CREATE_DELETE_SNAPSHOT in ctrl,
            F.EXPANSION_CONTROLLER: C.EXPAND_VOLUME in ctrl,
            F.EXPANSION_NODE: self.has_node(N.EXPAND_VOLUME),
            F.EXPANSION_ONLINE: models.ExpansionType.ONLINE in plugin.expansion,
            # CSI has no "online only" type: ONLINE expansion covers unpublished
            # volumes too, OFFLINE says published ones must not be expanded.
            F.EXPANSION_OFFLINE: bool(plugin.expansion),
            F.STAGE_UNSTAGE: self.has_node(N.STAGE_UNSTAGE_VOLUME),
            F.TOPOLOGY: S.VOLUME_ACCESSIBILITY_CONSTRAINTS in plugin.services,
            F.CAPACITY: C.GET_CAPACITY in ctrl,
            F.GROUP_SNAPSHOT: has_group and "CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT" in self.group,
            F.SNAPSHOT_METADATA: S.SNAPSHOT_METADATA_SERVICE in plugin.services,
            F.MODIFY_VOLUME: C.MODIFY_VOLUME in ctrl,
            F.VOLUME_STATS: self.has_node(N.GET_VOLUME_STATS),
        }
        for feature in UNDECLARABLE:
            declared[feature] = None
        return declared


def read(controller: csi_client.Client, nodes: dict[str, csi_client.Client]) -> Declared:
    """Ask the driver what it declares; a missing optional service counts as none."""
    info = controller.plugin_info()
    plugin = controller.plugin_capabilities()
    ctrl: frozenset[models.ControllerCapability] = frozenset()
    if S.CONTROLLER_SERVICE in plugin.services:
        ctrl = controller.controller_capabilities()
    group: frozenset[str] = frozenset()
    if S.GROUP_CONTROLLER_SERVICE in plugin.services:
        group = _optional(controller.group_capabilities, frozenset())
    none: frozenset[models.NodeCapability] = frozenset()
    node_caps = {name: _optional(node.node_capabilities, none) for name, node in nodes.items()}
    return Declared(info=info, plugin=plugin, controller=ctrl, node=node_caps, group=group)


def _optional(read_caps: Callable[[], T], default: T) -> T:
    try:
        return read_caps()
    except errors.Unsupported:
        return default
