"""The storage objects of one cluster, read once and looked up by driver name."""

from __future__ import annotations

import dataclasses

from csi_vm.kube import api as kube_api
from csi_vm.kube import models as kube


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeEntry:
    """A driver's registration on one node (from that node's CSINode)."""

    node: str
    driver: kube.CSINodeDriverInfo


@dataclasses.dataclass(frozen=True, kw_only=True)
class Inventory:
    drivers: tuple[kube.CSIDriverInfo, ...] = ()
    classes: tuple[kube.StorageClassInfo, ...] = ()
    snapshot_classes: tuple[kube.VolumeSnapshotClassInfo, ...] = ()
    nodes: tuple[kube.CSINodeInfo, ...] = ()

    def driver(self, name: str) -> kube.CSIDriverInfo | None:
        return next((d for d in self.drivers if d.name == name), None)

    def snapshot_classes_of(self, driver: str) -> list[kube.VolumeSnapshotClassInfo]:
        return [c for c in self.snapshot_classes if c.driver == driver]

    def node_entries(self, driver: str) -> list[NodeEntry]:
        return [
            NodeEntry(node=node.name, driver=entry)
            for node in self.nodes
            if (entry := node.driver(driver)) is not None
        ]

    def default_classes(self) -> list[str]:
        return [c.name for c in self.classes if c.is_default]


def read(api: kube_api.Api) -> Inventory:
    """Everything a cluster report needs, in four list calls (more pages for big clusters)."""
    return Inventory(
        drivers=tuple(api.csi_drivers()),
        classes=tuple(sorted(api.storage_classes(), key=lambda c: c.name)),
        snapshot_classes=tuple(api.snapshot_classes()),
        nodes=tuple(api.csi_nodes()),
    )
