"""A cluster's capability report: one row per StorageClass.

Each row holds what the cluster's CSIDriver, StorageClass, VolumeSnapshotClass
and CSINode objects declare about the class's provisioner, merged with a
socket probe of that driver where one is given (``PROVISIONER=ENDPOINT``).
Declarations are trusted for the plan, as nothing in a cluster-only row was
tested; a probe's verified results always win over them.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Mapping

from capabilities import cluster_features, cluster_inventory, ladder, matrix, model, probe
from capabilities import cluster_merge as merge_mod
from capabilities.cluster_inventory import Inventory
from csi_vm import errors
from csi_vm.kube import api as kube_api
from csi_vm.kube import models as kube

MODE = "cluster"
# Nodes listed by name in a row's declarations; clusters can have thousands.
_NODES_SHOWN = 10


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def run(
    api: kube_api.Api,
    *,
    probes: Mapping[str, probe.Target],
    options: probe.Options,
    cancel: threading.Event | None = None,
    clock: Callable[[], datetime.datetime] = _utc_now,
) -> model.MatrixReport:
    """Read the cluster, probe the given drivers in parallel, and build the report."""
    inventory = cluster_inventory.read(api)
    _check_probes(probes, inventory)
    probed: dict[str, model.DriverReport] = {}
    if probes:
        found = matrix.run(list(probes.values()), options, cancel=cancel)
        probed = dict(zip(probes, found.rows, strict=True))  # rows keep the targets' order
    return report(inventory, probed=probed, clock=clock)


def report(
    inventory: Inventory,
    *,
    probed: Mapping[str, model.DriverReport],
    clock: Callable[[], datetime.datetime] = _utc_now,
) -> model.MatrixReport:
    """The matrix for an inventory and the probe reports by provisioner name."""
    return model.MatrixReport(
        kind="cluster",
        generated_at=clock().isoformat(timespec="seconds"),
        rows=[row(sc, inventory, probed.get(sc.provisioner)) for sc in inventory.classes],
    )


def row(
    sc: kube.StorageClassInfo, inventory: Inventory, probed: model.DriverReport | None
) -> model.DriverReport:
    declared = cluster_features.features(sc, inventory)
    merged = (
        merge_mod.cluster_only(declared)
        if probed is None
        else merge_mod.merge(declared, probed, sc=sc)
    )
    return model.DriverReport(
        driver=_info(sc, probed),
        mode=MODE,
        features=merged.features,
        declared=_declarations(sc, inventory) | (probed.declared if probed else {}),
        plan=ladder.plan(merged.for_plan, trust_declared=True),
        warnings=cluster_features.warnings(sc, inventory) + merged.warnings,
        seconds=probed.seconds if probed else 0.0,
    )


def _check_probes(probes: Mapping[str, probe.Target], inventory: Inventory) -> None:
    """A probe for a provisioner no class uses is almost always a typo; say so before probing."""
    used = {sc.provisioner for sc in inventory.classes}
    unknown = sorted(set(probes) - used)
    if unknown:
        raise errors.InvalidInput(
            f"--probe names {', '.join(unknown)}, which no StorageClass uses",
            hint="provisioners in this cluster: " + (", ".join(sorted(used)) or "none"),
        )


def _info(sc: kube.StorageClassInfo, probed: model.DriverReport | None) -> model.DriverInfo:
    if probed is None:
        return model.DriverInfo(label=sc.name, endpoint="", name=sc.provisioner)
    return model.DriverInfo(
        label=sc.name,
        endpoint=probed.driver.endpoint,
        name=sc.provisioner,
        vendor_version=probed.driver.vendor_version,
        node_endpoints=dict(probed.driver.node_endpoints),
    )


def _declarations(sc: kube.StorageClassInfo, inventory: Inventory) -> dict[str, list[str]]:
    """The cluster objects' own words, for readers who want the source of a row."""
    found = {
        "storage_class": [
            f"provisioner={sc.provisioner}",
            f"allowVolumeExpansion={str(sc.allow_volume_expansion).lower()}",
            f"volumeBindingMode={sc.volume_binding_mode}",
            f"reclaimPolicy={sc.reclaim_policy}",
            f"default={str(sc.is_default).lower()}",
        ],
        # Values of keys that look like credentials are never shown.
        "parameters": [f"{k}={v}" for k, v in sorted(sc.shown_parameters().items())],
        "mount_options": list(sc.mount_options),
        "volume_snapshot_classes": [
            f"{c.name} (deletionPolicy={c.deletion_policy}{', default' if c.is_default else ''})"
            for c in inventory.snapshot_classes_of(sc.provisioner)
        ],
        "csi_nodes": _nodes(inventory.node_entries(sc.provisioner)),
    }
    driver = inventory.driver(sc.provisioner)
    if driver is not None:
        found["csi_driver"] = _driver_fields(driver)
    return {key: words for key, words in found.items() if words}


def _driver_fields(driver: kube.CSIDriverInfo) -> list[str]:
    fields: dict[str, object] = {
        "attachRequired": driver.attach_required,
        "podInfoOnMount": driver.pod_info_on_mount,
        "volumeLifecycleModes": ",".join(driver.volume_lifecycle_modes) or None,
        "fsGroupPolicy": driver.fs_group_policy,
        "storageCapacity": driver.storage_capacity,
        "requiresRepublish": driver.requires_republish,
        "seLinuxMount": driver.se_linux_mount,
    }
    return [f"{k}={_word(v)}" for k, v in fields.items() if v is not None]


def _nodes(entries: list[cluster_inventory.NodeEntry]) -> list[str]:
    shown = [
        f"{e.node} (nodeID={e.driver.node_id}"
        + (f", allocatable={e.driver.allocatable_count}" if e.driver.allocatable_count else "")
        + ")"
        for e in entries[:_NODES_SHOWN]
    ]
    more = len(entries) - _NODES_SHOWN
    return shown + ([f"... and {more} more nodes"] if more > 0 else [])


def _word(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
