"""API JSON of storage objects into `csi_vm.kube.models`, once, at the boundary.

Field names follow the Kubernetes API (camelCase in, snake_case out). A
malformed object (no name, a driver entry without a name) is a bug in the
cluster's data, reported as `errors.OperationFailed` naming the object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csi_vm import errors
from csi_vm.kube import models

Json = Mapping[str, Any]


def csi_driver(obj: Json) -> models.CSIDriverInfo:
    spec = _mapping(obj.get("spec"))
    return models.CSIDriverInfo(
        name=_name(obj, kind="CSIDriver"),
        attach_required=_bool(spec.get("attachRequired")),
        pod_info_on_mount=_bool(spec.get("podInfoOnMount")),
        volume_lifecycle_modes=tuple(str(m) for m in spec.get("volumeLifecycleModes") or ()),
        fs_group_policy=_str(spec.get("fsGroupPolicy")),
        storage_capacity=_bool(spec.get("storageCapacity")),
        requires_republish=_bool(spec.get("requiresRepublish")),
        se_linux_mount=_bool(spec.get("seLinuxMount")),
    )


def storage_class(obj: Json) -> models.StorageClassInfo:
    name = _name(obj, kind="StorageClass")
    provisioner = _str(obj.get("provisioner"))
    if not provisioner:
        raise errors.OperationFailed(f"StorageClass {name} has no provisioner")
    return models.StorageClassInfo(
        name=name,
        provisioner=provisioner,
        parameters=_strings(obj.get("parameters")),
        allow_volume_expansion=obj.get("allowVolumeExpansion") is True,
        volume_binding_mode=_str(obj.get("volumeBindingMode")) or "Immediate",
        reclaim_policy=_str(obj.get("reclaimPolicy")) or "Delete",
        mount_options=tuple(str(o) for o in obj.get("mountOptions") or ()),
        is_default=any(_annotation(obj, a) == "true" for a in models.DEFAULT_CLASS_ANNOTATIONS),
    )


def snapshot_class(obj: Json) -> models.VolumeSnapshotClassInfo:
    name = _name(obj, kind="VolumeSnapshotClass")
    return models.VolumeSnapshotClassInfo(
        name=name,
        driver=_str(obj.get("driver")) or "",
        deletion_policy=_str(obj.get("deletionPolicy")) or "",
        parameters=_strings(obj.get("parameters")),
        is_default=_annotation(obj, models.DEFAULT_SNAPSHOT_CLASS_ANNOTATION) == "true",
    )


def csi_node(obj: Json) -> models.CSINodeInfo:
    name = _name(obj, kind="CSINode")
    entries = _mapping(obj.get("spec")).get("drivers") or ()
    return models.CSINodeInfo(
        name=name, drivers=tuple(_node_driver(_mapping(e), node=name) for e in entries)
    )


def _node_driver(entry: Json, *, node: str) -> models.CSINodeDriverInfo:
    driver = _str(entry.get("name"))
    if not driver:
        raise errors.OperationFailed(f"CSINode {node} lists a driver without a name")
    count = _mapping(entry.get("allocatable")).get("count")
    return models.CSINodeDriverInfo(
        name=driver,
        node_id=_str(entry.get("nodeID")) or "",
        topology_keys=tuple(str(k) for k in entry.get("topologyKeys") or ()),
        allocatable_count=count if isinstance(count, int) else None,
    )


def _name(obj: Json, *, kind: str) -> str:
    name = _str(_mapping(obj.get("metadata")).get("name"))
    if not name:
        raise errors.OperationFailed(f"the API server returned a {kind} without a name")
    return name


def _annotation(obj: Json, key: str) -> str | None:
    return _str(_mapping(_mapping(obj.get("metadata")).get("annotations")).get(key))


def _mapping(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(value).items()}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None
