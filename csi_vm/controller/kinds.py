"""The kinds the controller reads and writes, as REST resources.

csi-vm's own kinds live in the ``csi-vm.io`` group at ``v1alpha1``: the API
may still change, which is what alpha means in Kubernetes versioning.
"""

from __future__ import annotations

from csi_vm.kube import objects

GROUP = "csi-vm.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def _own(plural: str, *, namespaced: bool = True) -> objects.Resource:
    return objects.Resource(group=GROUP, version=VERSION, plural=plural, namespaced=namespaced)


VM = _own("virtualmachines")
SNAPSHOT = _own("vmsnapshots")
RESTORE = _own("vmrestores")
CLONE = _own("vmclones")
MIGRATION = _own("vmmigrations")
REPORT = _own("storagecapabilityreports", namespaced=False)

#: Kind names of csi-vm's resources, by resource.
KIND = {
    VM: "VirtualMachine",
    SNAPSHOT: "VMSnapshot",
    RESTORE: "VMRestore",
    CLONE: "VMClone",
    MIGRATION: "VMMigration",
    REPORT: "StorageCapabilityReport",
}

PVC = objects.Resource(group="", version="v1", plural="persistentvolumeclaims")
EVENT = objects.Resource(group="", version="v1", plural="events")
POD = objects.Resource(group="", version="v1", plural="pods")
NODE = objects.Resource(group="", version="v1", plural="nodes", namespaced=False)
STORAGE_CLASS = objects.Resource(
    group="storage.k8s.io", version="v1", plural="storageclasses", namespaced=False
)
VOLUME_SNAPSHOT = objects.Resource(
    group="snapshot.storage.k8s.io", version="v1", plural="volumesnapshots"
)
JOB = objects.Resource(group="batch", version="v1", plural="jobs")
LEASE = objects.Resource(group="coordination.k8s.io", version="v1", plural="leases")
