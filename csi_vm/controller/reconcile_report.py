"""StorageCapabilityReport: one per StorageClass, what its driver can do and the plan.

What CDI's StorageProfile is for a StorageClass, but with a basis for every
feature: the cluster's own objects (CSIDriver, StorageClass,
VolumeSnapshotClass, CSINode) give what is *declared*; a capability probe
run on a node (`csi-vm capabilities probe`, whose JSON report a node Job
stores in ``status.probe``), or the in-cluster verification of `verify` when
``spec.verify`` is set, gives what is *verified*, and verified wins. The
plan is `capabilities.ladder.plan` over the merge, the same plan the local
flows follow; the other reconcilers read it through `strategy`.
"""

from __future__ import annotations

import pydantic

from capabilities import cluster, cluster_inventory, model
from csi_vm import errors
from csi_vm.controller import context, verify
from csi_vm.crd import kinds, status
from csi_vm.crd import models as crd

Json = context.Json


def reconcile_class(ctx: context.Context, sc_obj: Json) -> None:
    """Create or refresh the report of the StorageClass ``sc_obj``."""
    name = crd.meta(sc_obj).name
    inventory = cluster_inventory.read(ctx.api)
    sc = next((c for c in inventory.classes if c.name == name), None)
    if sc is None:
        return  # deleted since the event; its report goes with the next resync
    report = _ensure(ctx, name=name, provisioner=sc.provisioner)
    extra: Json = {}
    if verify.wanted(report):
        extra["verification"], found = verify.advance(ctx, report, sc)
        if found is not None:
            extra["probe"] = found
            report = {**report, "status": {**(report.get("status") or {}), "probe": found}}
    probed = _probed(report)
    row = cluster.row(sc, inventory, probed)
    ctx.metrics.features(name, dict(row.features))
    fields = {
        "provisioner": sc.provisioner,
        "basis": "verified" if probed else "declared",
        "features": {str(f): _feature(r) for f, r in row.features.items()},
        "plan": {op: choice.model_dump() for op, choice in row.plan.items()},
        "warnings": list(row.warnings),
        **extra,
    }
    fallbacks = sorted(op for op, c in row.plan.items() if not c.native)
    cond = status.condition(
        status.READY,
        ok=True,
        reason="Probed" if probed else "Declared",
        message=("operations by fallback: " + ", ".join(fallbacks)) if fallbacks else "all native",
        generation=crd.meta(report).generation,
    )
    context.write_status(ctx, kinds.REPORT, report, fields=fields, conditions=[cond])


def _ensure(ctx: context.Context, *, name: str, provisioner: str) -> Json:
    body = {
        "apiVersion": kinds.API_VERSION,
        "kind": "StorageCapabilityReport",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "csi-vm"}},
        "spec": {"storageClassName": name, "provisioner": provisioner},
    }
    try:
        return ctx.objs.create(kinds.REPORT, body)
    except errors.AlreadyExists:
        return ctx.objs.get(kinds.REPORT, name)


def _probed(report: Json) -> model.DriverReport | None:
    raw = (report.get("status") or {}).get("probe")
    if not raw:
        return None
    try:
        return model.DriverReport.model_validate(raw)
    except pydantic.ValidationError:
        return None  # an unreadable probe counts as no probe: declarations still hold


def _feature(result: model.FeatureResult) -> Json:
    return {
        "declared": result.declared,
        "verified": result.verified,
        "evidence": result.evidence[:256],
    }
