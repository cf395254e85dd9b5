"""Realistic storage objects for the fake Kubernetes API server.

Shaped like what the API server returns for common drivers after defaulting:
the AWS EBS driver (topology by zone, snapshots, expansion), the NFS driver
(shared, no expansion in its class), a non-CSI local-path provisioner (no
CSIDriver, no CSINode entry) and csi-vm's local reference driver.
"""

from __future__ import annotations

from typing import Any

from csi_vm.localdriver import context as localdriver_context
from csi_vm.localdriver import rpc_identity

Obj = dict[str, Any]

EBS = "ebs.csi.aws.com"
NFS = "nfs.csi.k8s.io"
LOCAL_PATH = "rancher.io/local-path"
#: The csi-vm local driver, named as it names itself, so a probe of the real
#: driver merges into the rows of its StorageClass.
CSI_VM_LOCAL = rpc_identity.PLUGIN_NAME
#: Its topology key (the driver pins node-local volumes with it).
CSI_VM_TOPOLOGY_KEY = localdriver_context.TOPOLOGY_KEY
EBS_ZONE_KEY = "topology.ebs.csi.aws.com/zone"

NODES = ("ip-10-0-1-17.ec2.internal", "ip-10-0-2-41.ec2.internal")


def csi_driver(
    name: str,
    *,
    attach_required: bool = True,
    fs_group_policy: str = "ReadWriteOnceWithFSType",
    modes: tuple[str, ...] = ("Persistent",),
    storage_capacity: bool = False,
    se_linux_mount: bool = False,
) -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "Helm"}},
        "spec": {
            "attachRequired": attach_required,
            "podInfoOnMount": False,
            "volumeLifecycleModes": list(modes),
            "fsGroupPolicy": fs_group_policy,
            "storageCapacity": storage_capacity,
            "requiresRepublish": False,
            "seLinuxMount": se_linux_mount,
        },
    }


def storage_class(
    name: str,
    provisioner: str,
    *,
    parameters: dict[str, str] | None = None,
    expansion: bool | None = None,
    binding: str = "Immediate",
    default: bool = False,
    mount_options: list[str] | None = None,
) -> Obj:
    obj: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": {}},
        "provisioner": provisioner,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": binding,
    }
    if parameters:
        obj["parameters"] = parameters
    if expansion is not None:
        obj["allowVolumeExpansion"] = expansion
    if mount_options:
        obj["mountOptions"] = mount_options
    if default:
        obj["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] = "true"
    return obj


def snapshot_class(name: str, driver: str, *, default: bool = False) -> Obj:
    annotations = {"snapshot.storage.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": name, "annotations": annotations},
        "driver": driver,
        "deletionPolicy": "Delete",
    }


def csi_node(name: str, drivers: list[Obj]) -> Obj:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSINode",
        "metadata": {"name": name, "ownerReferences": [{"kind": "Node", "name": name}]},
        "spec": {"drivers": drivers},
    }


def node_driver(
    name: str, node_id: str, *, topology_keys: list[str] | None = None, count: int | None = None
) -> Obj:
    entry: Obj = {"name": name, "nodeID": node_id, "topologyKeys": topology_keys}
    if count is not None:
        entry["allocatable"] = {"count": count}
    return entry


def local_volume(name: str, *, host: str) -> Obj:
    """A bound-ready PersistentVolume reachable on one node only, as local volumes are."""
    on_host = {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Block",
            "local": {"path": f"/dev/disk/by-id/{name}"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [on_host]}]}},
        },
    }


def typical_cluster(*, local_driver: str = CSI_VM_LOCAL) -> list[Obj]:
    """Two EKS-like nodes running EBS, NFS and the csi-vm local driver."""
    return [
        csi_driver(EBS, se_linux_mount=True),
        csi_driver(NFS, attach_required=False, fs_group_policy="File"),
        csi_driver(local_driver, storage_capacity=True),
        storage_class(
            "gp3",
            EBS,
            parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
            expansion=True,
            binding="WaitForFirstConsumer",
            default=True,
        ),
        storage_class(
            "nfs-csi",
            NFS,
            parameters={"server": "nfs-server.storage.svc.cluster.local", "share": "/exports"},
            mount_options=["nfsvers=4.1"],
        ),
        storage_class("local-path", LOCAL_PATH, binding="WaitForFirstConsumer"),
        storage_class("csi-vm-local", local_driver, expansion=True),
        snapshot_class("ebs-csi-snapclass", EBS, default=True),
        snapshot_class("csi-vm-local-snapclass", local_driver),
        *(_node(i, name, local_driver) for i, name in enumerate(NODES)),
    ]


def _node(index: int, name: str, local_driver: str) -> Obj:
    return csi_node(
        name,
        [
            node_driver(EBS, f"i-0{index}4f3c9a1b2d7e8f60", topology_keys=[EBS_ZONE_KEY], count=25),
            node_driver(NFS, name),
            node_driver(local_driver, name, topology_keys=[CSI_VM_TOPOLOGY_KEY]),
        ],
    )
