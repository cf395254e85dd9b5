"""Frozen views of csi-vm's custom resources, built once from API JSON.

The CRDs' OpenAPI schemas already refuse malformed objects at the API
server; these models give the reconcilers typed fields and defaults.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

import pydantic

from csi_vm import errors


class Frozen(pydantic.BaseModel):
    # Unknown fields are ignored: a newer CRD version may add some.
    model_config = pydantic.ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Meta(Frozen):
    name: str
    namespace: str = ""
    uid: str = ""
    generation: int = 1
    deletion_timestamp: str | None = pydantic.Field(default=None, alias="deletionTimestamp")


class VolumeMode(enum.StrEnum):
    """A claim's volumeMode, as the Kubernetes API spells it."""

    #: the volume is the disk: a raw block device
    BLOCK = "Block"
    #: the disk is an image file in the volume's filesystem (`csi_vm.diskfile`)
    FILESYSTEM = "Filesystem"


class Disk(Frozen):
    name: str
    size: str = "1Gi"
    storage_class: str = pydantic.Field(default="", alias="storageClassName")
    claim: str = pydantic.Field(default="", alias="claimName")
    #: of a claim the controller makes; a claim that exists keeps its own
    volume_mode: VolumeMode = pydantic.Field(default=VolumeMode.BLOCK, alias="volumeMode")

    def claim_of(self, vm: str) -> str:
        """The PVC that holds this disk: given, or named after VM and disk."""
        return self.claim or f"{vm}-{self.name}"


class VMSpec(Frozen):
    running: bool = False
    cpus: int = 1
    memory: str = "512Mi"
    node: str = pydantic.Field(default="", alias="nodeName")
    disks: tuple[Disk, ...] = ()


class SnapshotSpec(Frozen):
    vm: str = pydantic.Field(alias="vmName")
    snapshot_class: str = pydantic.Field(default="", alias="volumeSnapshotClassName")


class RestoreSpec(Frozen):
    snapshot: str = pydantic.Field(alias="snapshotName")
    target: str = pydantic.Field(alias="targetVMName")


class CloneSpec(Frozen):
    source: str = pydantic.Field(alias="sourceVMName")
    target: str = pydantic.Field(alias="targetVMName")


class MigrationSpec(Frozen):
    vm: str = pydantic.Field(alias="vmName")
    target_node: str = pydantic.Field(default="", alias="targetNode")
    #: 0: no cap
    bandwidth_mib_s: int = pydantic.Field(default=0, ge=0, alias="bandwidthMiBps")


def meta(obj: dict[str, Any]) -> Meta:
    return Meta.model_validate(obj.get("metadata") or {})


M = TypeVar("M", bound="Frozen")


def spec(obj: dict[str, Any], model: type[M]) -> M:
    """The object's spec as ``model``; a spec the model refuses is `errors.InvalidInput`."""
    try:
        return model.model_validate(obj.get("spec") or {})
    except pydantic.ValidationError as err:
        name = (obj.get("metadata") or {}).get("name")
        raise errors.InvalidInput(
            f"{obj.get('kind')} {name}: invalid spec: {err.errors()[0]['msg']}"
        ) from err
