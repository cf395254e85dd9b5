"""What a cluster's objects declare about the driver behind one StorageClass.

Kubernetes objects speak to a few features: whether PVCs of a class may grow
(allowVolumeExpansion), whether snapshots can be taken (a VolumeSnapshotClass
for the driver), topology (CSINode topologyKeys, WaitForFirstConsumer) and
capacity tracking (CSIDriver storageCapacity). They say nothing about the
rest, which stays null with the reason in its evidence; a socket probe
(``--probe PROVISIONER=ENDPOINT``) can fill those in.
"""

from __future__ import annotations

from capabilities import model
from capabilities.cluster_inventory import Inventory
from csi_vm.kube import models as kube

F = model.Feature
R = model.FeatureResult

# Shown on every feature Kubernetes objects cannot speak to.
_SILENT = "Kubernetes objects do not declare this; probe the driver (--probe {provisioner}=EP)"
_SILENT_WHY = {
    F.BLOCK: "no Kubernetes object says which volume modes a driver supports",
    F.FILESYSTEM: "no Kubernetes object says which volume modes a driver supports",
    F.MULTI_NODE_SHARED: "only staging one volume on two nodes shows real sharing",
}


def features(sc: kube.StorageClassInfo, inventory: Inventory) -> dict[model.Feature, R]:
    """One result per feature; declared is None where the cluster cannot tell."""
    snapshot = _snapshot(sc, inventory)
    known = {
        F.SNAPSHOT: snapshot,
        F.RESTORE_FROM_SNAPSHOT: snapshot.model_copy(
            update={"evidence": "restoring needs snapshots: " + snapshot.evidence}
        ),
        F.EXPANSION_CONTROLLER: _expansion(sc),
        F.TOPOLOGY: _topology(sc, inventory),
        F.CAPACITY: _capacity(sc, inventory),
    }
    return {f: known.get(f) or _unknown(f, sc) for f in model.Feature}


def _unknown(feature: model.Feature, sc: kube.StorageClassInfo) -> R:
    silent = _SILENT.format(provisioner=sc.provisioner)
    why = _SILENT_WHY.get(feature)
    return R(evidence=f"{why}; {silent}" if why else silent)


def _snapshot(sc: kube.StorageClassInfo, inventory: Inventory) -> R:
    classes = inventory.snapshot_classes_of(sc.provisioner)
    if classes:
        names = ", ".join(c.name + (" (default)" if c.is_default else "") for c in classes)
        return R(declared=True, evidence=f"VolumeSnapshotClass {names} names {sc.provisioner}")
    if not inventory.snapshot_classes:
        return R(
            declared=False,
            evidence="the cluster has no VolumeSnapshotClass at all "
            "(are the snapshot.storage.k8s.io CRDs and snapshot controller installed?)",
        )
    return R(declared=False, evidence=f"no VolumeSnapshotClass names {sc.provisioner}")


def _expansion(sc: kube.StorageClassInfo) -> R:
    if sc.allow_volume_expansion:
        return R(declared=True, evidence=f"StorageClass {sc.name}: allowVolumeExpansion: true")
    return R(
        declared=False,
        evidence=f"StorageClass {sc.name} does not set allowVolumeExpansion: "
        "Kubernetes refuses to grow its PVCs",
    )


def _topology(sc: kube.StorageClassInfo, inventory: Inventory) -> R:
    entries = inventory.node_entries(sc.provisioner)
    keys = sorted({k for e in entries for k in e.driver.topology_keys})
    if keys:
        nodes = _some([e.node for e in entries if e.driver.topology_keys])
        return R(declared=True, evidence=f"CSINode {nodes}: topologyKeys {', '.join(keys)}")
    if sc.volume_binding_mode == "WaitForFirstConsumer":
        return R(
            declared=True,
            evidence=f"StorageClass {sc.name}: volumeBindingMode WaitForFirstConsumer "
            "(volumes are placed where their first pod runs)",
        )
    if entries:
        nodes = _some([e.node for e in entries])
        return R(declared=False, evidence=f"CSINode {nodes}: no topologyKeys for {sc.provisioner}")
    return R(evidence=f"no CSINode lists {sc.provisioner}, and the class binds Immediate")


def _capacity(sc: kube.StorageClassInfo, inventory: Inventory) -> R:
    driver = inventory.driver(sc.provisioner)
    if driver is None:
        return R(evidence=f"no CSIDriver object {sc.provisioner}")
    if driver.storage_capacity is None:
        return R(evidence=f"CSIDriver {driver.name} leaves storageCapacity unset")
    word = "true" if driver.storage_capacity else "false"
    return R(
        declared=driver.storage_capacity,
        evidence=f"CSIDriver {driver.name}: storageCapacity: {word}",
    )


def _some(names: list[str], *, shown: int = 3) -> str:
    """A few names of a list that may hold thousands of nodes."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def warnings(sc: kube.StorageClassInfo, inventory: Inventory) -> list[str]:
    """What in the cluster's setup will surprise a user of this class."""
    found = _registration(sc, inventory)
    defaults = inventory.default_classes()
    if sc.is_default and len(defaults) > 1:
        found.append(
            f"StorageClass {sc.name} is one of {len(defaults)} default classes "
            f"({', '.join(defaults)}): PVCs that name no class get the newest of them"
        )
    snapshot_defaults = [
        c.name for c in inventory.snapshot_classes_of(sc.provisioner) if c.is_default
    ]
    if len(snapshot_defaults) > 1:
        found.append(
            f"{sc.provisioner} has {len(snapshot_defaults)} default VolumeSnapshotClasses "
            f"({', '.join(snapshot_defaults)}): snapshots that name no class are refused"
        )
    return found


def _registration(sc: kube.StorageClassInfo, inventory: Inventory) -> list[str]:
    name = sc.provisioner
    has_driver = inventory.driver(name) is not None
    on_nodes = bool(inventory.node_entries(name))
    if not has_driver and not on_nodes:
        return [
            f"provisioner {name} has no CSIDriver object and no CSINode lists it: not a CSI "
            "driver, or not installed; the cluster declares nothing about it"
        ]
    if not has_driver:
        return [
            f"no CSIDriver object for {name}: Kubernetes assumes defaults (attachRequired: "
            "true, no capacity tracking); a driver's deployment normally creates one"
        ]
    if not on_nodes:
        return [
            f"CSIDriver {name} is registered on no node (no CSINode lists it): its node "
            f"plugin is not running, so volumes of {sc.name} cannot be mounted anywhere"
        ]
    return []
