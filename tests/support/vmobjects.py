"""Custom resources and cluster objects for the controller's fake-API tests."""

from __future__ import annotations

from typing import Any

from csi_vm.crd import kinds

Obj = dict[str, Any]
NS = "vms"
#: The Kubernetes version whose OpenAPI schemas the chart and the controller's
#: objects are validated against (kubernetes-validate, offline).
KUBERNETES = "1.37.0"


def _own(kind: str, name: str, spec: Obj, *, namespace: str = NS) -> Obj:
    return {
        "apiVersion": kinds.API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def vm(
    name: str, *, sc: str = "fast", running: bool = False, size: str = "1Gi", mode: str = ""
) -> Obj:
    """A stopped VM with one disk, root; ``mode``: its volumeMode, when given."""
    disks: list[Obj] = [{"name": "root", "size": size, "storageClassName": sc}]
    if mode:
        disks[0]["volumeMode"] = mode
    return _own("CsiVM", name, {"running": running, "cpus": 1, "memory": "256Mi", "disks": disks})


def snapshot(name: str, *, vm_name: str) -> Obj:
    return _own("CsiVMSnapshot", name, {"vmName": vm_name})


def restore(name: str, *, snapshot_name: str, target: str) -> Obj:
    return _own("CsiVMRestore", name, {"snapshotName": snapshot_name, "targetVMName": target})


def clone(name: str, *, source: str, target: str) -> Obj:
    return _own("CsiVMClone", name, {"sourceVMName": source, "targetVMName": target})


def fan_out(name: str, *, source: str, count: int, template: str) -> Obj:
    """A CsiVMClone that makes ``count`` VMs named by ``template``."""
    spec = {"sourceVMName": source, "count": count, "nameTemplate": template}
    return _own("CsiVMClone", name, spec)


def migration(name: str, *, vm_name: str, node: str) -> Obj:
    return _own("CsiVMMigration", name, {"vmName": vm_name, "targetNode": node})


def node(name: str) -> Obj:
    """A Node: VMs and migrations name the node they run on."""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}


def report(sc: str, plan: dict[str, tuple[str, bool, str]]) -> Obj:
    """A StorageCapabilityReport whose plan is ``{operation: (strategy, native, reason)}``."""
    return {
        "apiVersion": kinds.API_VERSION,
        "kind": "StorageCapabilityReport",
        "metadata": {"name": sc},
        "spec": {"storageClassName": sc, "provisioner": "example.csi"},
        "status": {
            "plan": {
                op: {"strategy": s, "native": n, "reason": r} for op, (s, n, r) in plan.items()
            }
        },
    }


NATIVE = {
    "vm_snapshot": ("csi-snapshot", True, "CSI CreateSnapshot of each disk (snapshot verified)"),
    "vm_restore": ("csi-restore", True, "CreateVolume from the snapshot (verified)"),
    "vm_clone": ("csi-clone", True, "CreateVolume with the source volume (clone verified)"),
    "disk_expand": ("csi-expand", True, "ControllerExpandVolume (verified)"),
    "live_migration": ("shared-volume", True, "both nodes use the same volume (verified)"),
}
BASIC = {
    "vm_snapshot": (
        "host-copy",
        False,
        "copy each disk (fallback, since csi-snapshot needs snapshot)",
    ),
    "vm_restore": (
        "host-copy",
        False,
        "copy the snapshot (fallback, since csi-restore needs restore)",
    ),
    "vm_clone": ("host-copy", False, "copy each disk (fallback, since csi-clone needs clone)"),
    "disk_expand": ("copy-to-larger", False, "copy into a larger volume (fallback)"),
    "live_migration": ("storage-migration", False, "storage copy (fallback, not shared)"),
}
SNAPSHOT_ONLY = {
    **BASIC,
    "vm_snapshot": NATIVE["vm_snapshot"],
    "vm_restore": NATIVE["vm_restore"],
    "vm_clone": (
        "snapshot-restore",
        True,
        "temporary snapshot (fallback, since csi-clone needs clone)",
    ),
}


def events_about(objs: list[Obj], name: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the Events about object ``name``."""
    return [
        (e["type"], e["reason"], e["message"]) for e in objs if e["involvedObject"]["name"] == name
    ]
