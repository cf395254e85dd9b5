"""A StorageClass row merged with a socket probe of its driver.

Verified results come from the probe. Declarations come from the cluster where
its objects say something, and from the driver's own capabilities otherwise.

Two cluster declarations are gates: PVCs of a class without
allowVolumeExpansion cannot grow, and without a VolumeSnapshotClass for the
driver Kubernetes takes no CSI snapshots, whatever the driver itself can do.
The row still shows what the probe verified, but the plan is made as if the
gated feature were missing, and a warning says how to open the gate.

The driver's own declarations are a gate too: the sidecars never call an RPC
the driver does not declare, so a feature that works, undeclared, is kept
out of the plan whatever the cluster objects say.
"""

from __future__ import annotations

import dataclasses

from capabilities import model
from csi_vm.kube import models as kube

F = model.Feature
R = model.FeatureResult

# What opens each gate, for the warning. Restoring shares the snapshot gate
# and is not warned about twice.
_GATES = {
    F.EXPANSION_CONTROLLER: "set allowVolumeExpansion: true on StorageClass {sc}",
    F.SNAPSHOT: "create a VolumeSnapshotClass with driver {driver}",
    F.RESTORE_FROM_SNAPSHOT: "",
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Merged:
    features: dict[model.Feature, R]
    for_plan: dict[model.Feature, R]  # features with closed gates taken away
    warnings: list[str]


def cluster_only(features: dict[model.Feature, R]) -> Merged:
    return Merged(features=features, for_plan=features, warnings=[])


def merge(
    cluster: dict[model.Feature, R], probed: model.DriverReport, *, sc: kube.StorageClassInfo
) -> Merged:
    endpoint = probed.driver.endpoint
    if probed.error:
        return _unmerged(cluster, f"probe of {endpoint} failed: {probed.error}")
    if probed.driver.name != sc.provisioner:
        return _unmerged(
            cluster,
            f"--probe {sc.provisioner}={endpoint}: that endpoint serves driver "
            f"{probed.driver.name!r}, not {sc.provisioner!r}",
        )
    features = {f: _feature(cluster[f], probed.features.get(f)) for f in model.Feature}
    for_plan = {
        f: _gated(f, features[f], cluster[f], probed.features.get(f)) for f in model.Feature
    }
    warnings = [f"driver: {w}" for w in probed.warnings]
    warnings += _gate_warnings(cluster, probed, sc)
    warnings += _broken_declarations(cluster, probed)
    return Merged(features=features, for_plan=for_plan, warnings=warnings)


def _unmerged(cluster: dict[model.Feature, R], why: str) -> Merged:
    warning = f"{why}; the row shows only what the cluster declares"
    return Merged(features=cluster, for_plan=cluster, warnings=[warning])


def _feature(cluster: R, driver: R | None) -> R:
    if driver is None:
        return cluster
    says = cluster.declared is not None
    parts = [f"cluster: {cluster.evidence}"] if says else []
    parts.append(f"driver: {driver.evidence}")
    return R(
        declared=cluster.declared if says else driver.declared,
        verified=driver.verified,
        inferred=driver.inferred,
        evidence="; ".join(parts),
        seconds=driver.seconds,
    )


def _gated(feature: model.Feature, merged: R, cluster: R, driver: R | None) -> R:
    if feature in _GATES and cluster.declared is False:
        return R(declared=False, evidence=merged.evidence)
    if driver is not None and driver.undeclared:
        return merged.model_copy(update={"declared": False})
    return merged


def _can(result: R | None) -> str | None:
    """How the driver shows it can do a feature: "verified", "declares" or None."""
    if result is None:
        return None
    if result.verified is not None:
        return "verified" if result.verified else None
    return "declares" if result.declared else None


def _gate_warnings(
    cluster: dict[model.Feature, R], probed: model.DriverReport, sc: kube.StorageClassInfo
) -> list[str]:
    found = []
    for feature, remedy in _GATES.items():
        how = _can(probed.features.get(feature))
        if remedy and how and cluster[feature].declared is False:
            found.append(
                f"{feature}: the driver {how} it, but {cluster[feature].evidence}; "
                f"the plan falls back. To use it natively, "
                + remedy.format(sc=sc.name, driver=sc.provisioner)
            )
    return found


def _broken_declarations(cluster: dict[model.Feature, R], probed: model.DriverReport) -> list[str]:
    found = []
    for feature, result in cluster.items():
        tried = probed.features.get(feature)
        if result.declared is True and tried is not None and tried.verified is False:
            found.append(
                f"{feature}: the cluster declares it ({result.evidence}), "
                f"but the probe found it does not work: {tried.evidence}"
            )
    return found
