"""The kinds the controller and the node agent read and write, as REST resources.

csi-vm's own kinds live in the ``csi-vm.io`` group at ``v1alpha1``: the API
may still change, which is what alpha means in Kubernetes versioning.

Their names carry a ``CsiVM`` prefix because csi-vm runs next to KubeVirt:
kubectl resolves a bare ``virtualmachines`` or ``vmsnapshot`` across every
group, so names shared with KubeVirt's kinds, plurals or short names would
make ``kubectl get`` show one project's objects when the user meant the
other's. tests/unit/controller/test_crd_names.py holds the list of names to
stay clear of.
"""

from __future__ import annotations

from csi_vm.kube import objects

GROUP = "csi-vm.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def _own(plural: str, *, namespaced: bool = True) -> objects.Resource:
    return objects.Resource(group=GROUP, version=VERSION, plural=plural, namespaced=namespaced)


VM = _own("csivms")
SNAPSHOT = _own("csivmsnapshots")
RESTORE = _own("csivmrestores")
CLONE = _own("csivmclones")
MIGRATION = _own("csivmmigrations")
REPORT = _own("storagecapabilityreports", namespaced=False)

#: Kind names of csi-vm's resources, by resource.
KIND = {
    VM: "CsiVM",
    SNAPSHOT: "CsiVMSnapshot",
    RESTORE: "CsiVMRestore",
    CLONE: "CsiVMClone",
    MIGRATION: "CsiVMMigration",
    REPORT: "StorageCapabilityReport",
}

PVC = objects.Resource(group="", version="v1", plural="persistentvolumeclaims")
PV = objects.Resource(group="", version="v1", plural="persistentvolumes", namespaced=False)
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
