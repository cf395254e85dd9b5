"""Typed, frozen views of the Kubernetes storage objects csi-vm reads.

`csi_vm.kube.convert` builds them once from API JSON, so nothing above this
adapter sees raw dicts or kubernetes client classes. Optional fields are None
when the object leaves them unset (older clusters do not default them).
"""

from __future__ import annotations

import re

import pydantic

#: The annotation that marks the default StorageClass; Kubernetes still honours
#: the beta spelling, so both are read.
DEFAULT_CLASS_ANNOTATIONS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)
#: The annotation that marks the default VolumeSnapshotClass of a driver.
DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"

# Parameter keys whose values may be credentials. Drivers invent their own
# keys, so this errs towards hiding: a hidden ARN costs less than a leaked key.
_SECRET_KEY = re.compile(r"secret|passw|token|credential|private|key", re.IGNORECASE)
# The provisioner's reserved keys that *name* a Secret object (the
# csi.storage.k8s.io/*-secret-name and *-secret-namespace family) hold no
# secret themselves and help debugging, so they stay readable.
_SECRET_REFERENCE = re.compile(r"^csi\.storage\.k8s\.io/[a-z-]+-secret-(name|namespace)$")
REDACTED = "<redacted>"


def looks_secret(key: str) -> bool:
    """Whether the value of a parameter ``key`` must never be shown."""
    return bool(_SECRET_KEY.search(key)) and not _SECRET_REFERENCE.match(key)


def redact(parameters: dict[str, str]) -> dict[str, str]:
    """``parameters`` with the values of secret-looking keys replaced."""
    return {k: REDACTED if looks_secret(k) else v for k, v in parameters.items()}


class Frozen(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


class CSIDriverInfo(Frozen):
    """A CSIDriver object (storage.k8s.io/v1): how Kubernetes treats a driver."""

    name: str
    attach_required: bool | None = None
    pod_info_on_mount: bool | None = None
    volume_lifecycle_modes: tuple[str, ...] = ()
    fs_group_policy: str | None = None
    storage_capacity: bool | None = None
    requires_republish: bool | None = None
    se_linux_mount: bool | None = None


class StorageClassInfo(Frozen):
    """A StorageClass (storage.k8s.io/v1).

    ``parameters`` is left out of the repr; show `shown_parameters()` instead,
    which hides values of keys that look like credentials.
    """

    name: str
    provisioner: str
    parameters: dict[str, str] = pydantic.Field(default_factory=dict, repr=False)
    # Unset means "not allowed": the API server refuses to grow such PVCs.
    allow_volume_expansion: bool = False
    # The API server defaults these two on create; the same defaults apply here.
    volume_binding_mode: str = "Immediate"
    reclaim_policy: str = "Delete"
    mount_options: tuple[str, ...] = ()
    is_default: bool = False

    def shown_parameters(self) -> dict[str, str]:
        return redact(self.parameters)


class VolumeSnapshotClassInfo(Frozen):
    """A VolumeSnapshotClass (snapshot.storage.k8s.io/v1, a CRD)."""

    name: str
    driver: str
    deletion_policy: str
    parameters: dict[str, str] = pydantic.Field(default_factory=dict, repr=False)
    is_default: bool = False


class CSINodeDriverInfo(Frozen):
    """One driver registered on a node (an entry of CSINode spec.drivers)."""

    name: str
    node_id: str
    topology_keys: tuple[str, ...] = ()
    allocatable_count: int | None = None


class CSINodeInfo(Frozen):
    """A CSINode object: the CSI drivers whose node plugin runs on that node."""

    name: str
    drivers: tuple[CSINodeDriverInfo, ...] = ()

    def driver(self, name: str) -> CSINodeDriverInfo | None:
        return next((d for d in self.drivers if d.name == name), None)
