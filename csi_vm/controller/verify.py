"""Verify a StorageClass inside the cluster: the CSI sidecars asked, not the docs read.

When a StorageCapabilityReport has ``spec.verify: true``, the controller
tries each storage operation the way VMs will use it, through the same
Kubernetes objects: a 1 GiB block PVC of the class, a VolumeSnapshot of it,
a PVC restored from that snapshot, a PVC cloned from it, and the PVC grown to
2 GiB; and a ReadWriteMany Block PVC written on one node and read on another
(`verify_shared`). On a WaitForFirstConsumer class each PVC gets a small holder Pod, as
nothing binds there without a consumer. What happened (bound, ready, grown,
or not within `TIMEOUT`) becomes the report's verified results, which outrank
every declaration; then the probe objects are deleted. One step per
reconcile pass: nothing here waits.
"""

from __future__ import annotations

import dataclasses
import datetime

from capabilities import model
from csi_vm import errors
from csi_vm.controller import context, snapclass, storage, verify_shared
from csi_vm.crd import kinds
from csi_vm.crd import models as crd
from csi_vm.kube import models as kube
from csi_vm.kube import quantity

Json = context.Json
F = model.Feature
SIZE, GROWN = "1Gi", "2Gi"
#: Seconds a step may take before it counts as not working. Real drivers
#: snapshot and clone in seconds to a minute; five minutes leaves room for
#: slow cloud APIs without leaving a report unverified for long.
TIMEOUT = 300
DONE = "Done"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Probe:
    sc: kube.StorageClassInfo
    namespace: str
    owner: Json
    image: str

    @property
    def source(self) -> str:
        return f"csi-vm-probe-{self.sc.name}"

    def target(self, name: str) -> storage.Target:
        return storage.Target(
            name=name,
            namespace=self.namespace,
            size=SIZE,
            storage_class=self.sc.name,
            owner=self.owner,
            annotations={storage.STRATEGY_ANNOTATION: "verify"},
        )

    @property
    def shared(self) -> verify_shared.Probe:
        return verify_shared.Probe(claim=self.target(f"{self.source}-shared"), image=self.image)


def wanted(report: Json) -> bool:
    """Whether ``report`` asks for verification not yet done for its current spec."""
    spec = report.get("spec") or {}
    state = (report.get("status") or {}).get("verification") or {}
    done = state.get("phase") == DONE and state.get("generation") == crd.meta(report).generation
    return spec.get("verify") is True and not done


def advance(
    ctx: context.Context, report: Json, sc: kube.StorageClassInfo
) -> tuple[Json, Json | None]:
    """One step: the ``verification`` status, and the probe report once every result is in."""
    state = (report.get("status") or {}).get("verification") or {}
    generation = crd.meta(report).generation
    # A run for an earlier spec (finished, or cut short by a new one) does
    # not start the clock of this one: its age would make every step late.
    ongoing = state.get("phase") == "Running" and state.get("generation") == generation
    started = str(state.get("startedAt")) if ongoing else _stamp(ctx.clock())
    probe = Probe(
        sc=sc, namespace=ctx.probe_namespace, owner=storage.owner_of(report), image=ctx.image
    )
    late = _age(ctx, started) > TIMEOUT
    results = _results(ctx, probe, late=late)
    if any(r is None for r in results.values()):
        return {"phase": "Running", "startedAt": started, "generation": generation}, None
    _clean(ctx, probe)
    finished = {
        "phase": DONE,
        "startedAt": started,
        "finishedAt": _stamp(ctx.clock()),
        "generation": generation,
    }
    return finished, model.to_json_dict(_report(probe, results))


def _results(
    ctx: context.Context, probe: Probe, *, late: bool
) -> dict[F, model.FeatureResult | None]:
    shared = verify_shared.result(ctx, probe.shared, late=lambda what: _late(late, what))
    return {**_operations(ctx, probe, late=late), F.MULTI_NODE_SHARED: shared}


def _operations(
    ctx: context.Context, probe: Probe, *, late: bool
) -> dict[F, model.FeatureResult | None]:
    source = _claim(ctx, probe, probe.target(probe.source))
    if source.get("status", {}).get("phase") != "Bound":
        never = model.FeatureResult(
            verified=False, evidence=f"probe PVC {probe.source} never bound"
        )
        pending = never if late else None
        return {
            f: pending
            for f in (F.SNAPSHOT, F.RESTORE_FROM_SNAPSHOT, F.CLONE, F.EXPANSION_CONTROLLER)
        }
    snapshot = _snapshot(ctx, probe, late=late)
    restore = _restore(ctx, probe, snapshot, late=late)
    clone = _bound(
        ctx, probe, f"{probe.source}-clone", storage.claim_source(probe.source), late=late
    )
    # Grown only once the others are settled: a clone must ask for at least
    # its source's size and a restore for the snapshot's, so a source grown
    # first makes both fail for a reason that is not the driver's.
    settled = all(r is not None for r in (snapshot, restore, clone))
    return {
        F.SNAPSHOT: snapshot,
        F.RESTORE_FROM_SNAPSHOT: restore,
        F.CLONE: clone,
        F.EXPANSION_CONTROLLER: _grow(ctx, probe, source, late=late) if settled else None,
    }


def _snapshot(ctx: context.Context, probe: Probe, *, late: bool) -> model.FeatureResult | None:
    body = storage.volume_snapshot(
        probe.target(probe.source),
        source_claim=probe.source,
        snapshot_class=snapclass.pick(ctx.api.snapshot_classes(), driver=probe.sc.provisioner),
    )
    try:
        snap = storage.ensure(ctx.objs, kinds.VOLUME_SNAPSHOT, body)
    except errors.NotFound:
        return model.FeatureResult(
            verified=False, evidence="the cluster serves no VolumeSnapshot API"
        )
    progress = storage.snapshot_progress(snap)
    if progress is storage.Progress.READY:
        return model.FeatureResult(verified=True, evidence="VolumeSnapshot became readyToUse")
    error = str(((snap.get("status") or {}).get("error") or {}).get("message") or "")
    if progress is storage.Progress.FAILED:
        return model.FeatureResult(verified=False, evidence=f"VolumeSnapshot failed: {error}"[:256])
    return _late(late, "VolumeSnapshot not readyToUse")


def _restore(
    ctx: context.Context, probe: Probe, snapshot: model.FeatureResult | None, *, late: bool
) -> model.FeatureResult | None:
    if snapshot is None:
        return None
    if not snapshot.verified:
        return model.FeatureResult(verified=False, evidence="no snapshot to restore from")
    source = storage.snapshot_source(probe.source)
    return _bound(ctx, probe, f"{probe.source}-restore", source, late=late)


def _bound(
    ctx: context.Context, probe: Probe, name: str, source: Json, *, late: bool
) -> model.FeatureResult | None:
    pvc = _claim(ctx, probe, probe.target(name), data_source=source)
    if storage.claim_progress(pvc) is storage.Progress.READY:
        return model.FeatureResult(verified=True, evidence=f"PVC from {source['kind']} bound")
    return _late(late, f"PVC from {source['kind']} not bound")


def _grow(
    ctx: context.Context, probe: Probe, source: Json, *, late: bool
) -> model.FeatureResult | None:
    capacity = str(((source.get("status") or {}).get("capacity") or {}).get("storage") or "0")
    if quantity.to_bytes(capacity) >= quantity.to_bytes(GROWN):
        return model.FeatureResult(verified=True, evidence=f"PVC grew to {capacity}")
    try:
        ctx.objs.patch(kinds.PVC, probe.source, storage.resize(GROWN), namespace=probe.namespace)
    except errors.Rejected as err:
        return model.FeatureResult(verified=False, evidence=f"resize refused: {err.message}"[:256])
    return _late(late, f"PVC not grown to {GROWN}")


def _claim(
    ctx: context.Context, probe: Probe, target: storage.Target, *, data_source: Json | None = None
) -> Json:
    pvc = storage.ensure(ctx.objs, kinds.PVC, storage.claim(target, data_source=data_source))
    if probe.sc.volume_binding_mode == "WaitForFirstConsumer":
        storage.ensure(ctx.objs, kinds.POD, storage.holder_pod(target, image=probe.image))
    return pvc


def _late(late: bool, what: str) -> model.FeatureResult | None:
    if not late:
        return None
    return model.FeatureResult(verified=False, evidence=f"{what} after {TIMEOUT} s")


def _clean(ctx: context.Context, probe: Probe) -> None:
    names = [probe.source, f"{probe.source}-clone", f"{probe.source}-restore"]
    for name in names:
        ctx.objs.delete(kinds.POD, storage.holder_name(name), namespace=probe.namespace)
    for res, name in probe.shared.made():
        ctx.objs.delete(res, name, namespace=probe.namespace)
    ctx.objs.delete(kinds.VOLUME_SNAPSHOT, probe.source, namespace=probe.namespace)
    for name in names:
        ctx.objs.delete(kinds.PVC, name, namespace=probe.namespace)


def _report(probe: Probe, results: dict[F, model.FeatureResult | None]) -> model.DriverReport:
    return model.DriverReport(
        driver=model.DriverInfo(
            label=probe.sc.name, endpoint="kubernetes", name=probe.sc.provisioner
        ),
        mode="verified",
        features={f: r for f, r in results.items() if r is not None},
    )


def _stamp(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(ctx: context.Context, stamp: str) -> float:
    when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return (ctx.clock() - when).total_seconds()
