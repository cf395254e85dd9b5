"""Reconcilers against the fake Kubernetes API server (a fake: no real cluster here).

Each test puts custom resources and a StorageCapabilityReport in the fake,
runs one reconcile pass, and reads back the storage objects created, the
status written and the Events posted: native rungs, fallback rungs, and the
refusals.
"""

from __future__ import annotations

import pytest

from csi_vm import errors
from csi_vm.controller import context, run
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS


def _get(ctx: context.Context, res, name: str) -> dict:  # type: ignore[no-untyped-def]
    return ctx.objs.get(res, name, namespace=NS if res.namespaced else "")


def _events(fake: fakekube.FakeKube, name: str) -> list[tuple[str, str, str]]:
    res = fake.store.resource("", "v1", "events")
    assert res is not None
    return v.events_about(fake.store.list_objects(res)[0], name)


def _pass(ctx: context.Context, res, name: str) -> dict:  # type: ignore[no-untyped-def]
    run.reconcile(ctx, res, _get(ctx, res, name))
    return _get(ctx, res, name)


def _bind(fake: fakekube.FakeKube, name: str) -> None:
    res = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert res is not None
    fake.store.patch(res, NS, name, {"status": {"phase": "Bound"}}, subresource="status")


def _snap_ready(fake: fakekube.FakeKube, name: str) -> None:
    res = fake.store.resource("snapshot.storage.k8s.io", "v1", "volumesnapshots")
    assert res is not None
    fake.store.patch(res, NS, name, {"status": {"readyToUse": True}}, subresource="status")


def _job_done(fake: fakekube.FakeKube, name: str, *, ok: bool = True) -> None:
    res = fake.store.resource("batch", "v1", "jobs")
    assert res is not None
    status = {"succeeded": 1} if ok else {"conditions": [{"type": "Failed", "status": "True"}]}
    fake.store.patch(res, NS, name, {"status": status}, subresource="status")


def _fast_class() -> kubeobjects.Obj:
    """The class of `v.vm`'s disk: without it the VM's status says the class is missing."""
    return kubeobjects.storage_class("fast", kubeobjects.CSI_VM_LOCAL)


def test_vm_gets_a_block_claim_owned_by_it(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.vm("web"))
    vm = _pass(ctx, kinds.VM, "web")
    pvc = _get(ctx, kinds.PVC, "web-root")
    assert pvc["spec"]["volumeMode"] == "Block"
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["metadata"]["ownerReferences"][0]["name"] == "web"
    assert vm["status"]["phase"] == "Provisioning"
    _bind(fake, "web-root")
    vm = _pass(ctx, kinds.VM, "web")
    assert vm["status"]["phase"] == "Stopped"
    assert vm["status"]["conditions"][0]["status"] == "True"


def test_vm_disk_grows_through_the_resizer_when_native(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"))
    _pass(ctx, kinds.VM, "web")
    _grow_to(ctx, "2Gi")
    vm = _pass(ctx, kinds.VM, "web")
    assert _get(ctx, kinds.PVC, "web-root")["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert vm["status"]["disks"][0]["resize"]["strategy"] == "csi-expand"


def _grow_to(ctx: context.Context, size: str) -> None:
    disks = [{"name": "root", "size": size, "storageClassName": "fast"}]
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": disks}}, namespace=NS)


def test_vm_disk_grows_by_copy_when_the_driver_cannot_expand(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(_fast_class(), v.report("fast", v.BASIC), v.vm("web"))
    _pass(ctx, kinds.VM, "web")
    _grow_to(ctx, "2Gi")
    vm = _pass(ctx, kinds.VM, "web")  # the strategy is recorded before anything is made
    assert vm["status"]["disks"][0]["resize"]["phase"] == "Pending"
    with pytest.raises(errors.NotFound):
        _get(ctx, kinds.PVC, "web-root-2gi")
    vm = _pass(ctx, kinds.VM, "web")
    resize = vm["status"]["disks"][0]["resize"]
    assert (resize["phase"], resize["strategy"]) == ("Copying", "copy-to-larger")
    assert "fallback" in resize["fallbackReason"]
    assert _get(ctx, kinds.PVC, "web-root-2gi")["spec"]["resources"]["requests"]["storage"] == "2Gi"
    _job_done(fake, "web-root-2gi-copy")
    _pass(ctx, kinds.VM, "web")
    vm = _pass(ctx, kinds.VM, "web")  # the next pass sees the switched disk
    assert vm["spec"]["disks"][0]["claimName"] == "web-root-2gi"
    assert vm["status"]["disks"][0]["claimName"] == "web-root-2gi"
    with pytest.raises(errors.NotFound):
        _get(ctx, kinds.PVC, "web-root")  # retired only after the switch
    reasons = [r for _, r, _ in _events(fake, "web")]
    assert reasons == ["ExpandCopying", "ExpandDone"]


def test_vm_disk_copy_waits_for_the_vm_to_stop(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(_fast_class(), v.report("fast", v.BASIC), v.vm("web", running=True))
    _pass(ctx, kinds.VM, "web")
    _grow_to(ctx, "2Gi")
    for _ in range(2):  # one Event, however often it is reconciled
        vm = _pass(ctx, kinds.VM, "web")
    assert vm["status"]["disks"][0]["resize"]["phase"] == "WaitingForStop"
    assert [(t, r) for t, r, _ in _events(fake, "web")] == [("Warning", "ExpandWaitingForStop")]


def test_a_failed_copy_leaves_the_vm_on_its_disk(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"))
    _pass(ctx, kinds.VM, "web")
    _grow_to(ctx, "2Gi")
    _pass(ctx, kinds.VM, "web")
    _pass(ctx, kinds.VM, "web")
    _job_done(fake, "web-root-2gi-copy", ok=False)
    vm = _pass(ctx, kinds.VM, "web")
    assert vm["status"]["disks"][0]["resize"]["phase"] == "Failed"
    assert "claimName" not in vm["spec"]["disks"][0]
    assert _get(ctx, kinds.PVC, "web-root")


def test_snapshot_native_makes_volume_snapshots(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.snapshot("s1", vm_name="web"))
    snap = _pass(ctx, kinds.SNAPSHOT, "s1")
    vs = _get(ctx, kinds.VOLUME_SNAPSHOT, "s1-root")
    assert vs["spec"]["source"]["persistentVolumeClaimName"] == "web-root"
    assert (snap["status"]["strategy"], snap["status"]["phase"]) == ("csi-snapshot", "Pending")
    assert snap["status"].get("fallbackReason") is None
    _snap_ready(fake, "s1-root")
    snap = _pass(ctx, kinds.SNAPSHOT, "s1")
    assert snap["status"]["phase"] == "Ready"
    reasons = [r for _, r, _ in _events(fake, "s1")]
    assert reasons == ["StrategyChosen", "Succeeded"]
    counted = b'operation="vm_snapshot",result="success",strategy="csi-snapshot"} 1.0'
    assert b"csi_vm_operations_total{" + counted in ctx.metrics.exposition()


def test_snapshot_falls_back_to_a_host_copy_job(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.snapshot("s1", vm_name="web"))
    snap = _pass(ctx, kinds.SNAPSHOT, "s1")
    job = _get(ctx, kinds.JOB, "s1-root-copy")
    volumes = {
        vol["name"]: vol["persistentVolumeClaim"]["claimName"]
        for vol in job["spec"]["template"]["spec"]["volumes"]
    }
    assert volumes == {"source": "web-root", "target": "s1-root"}
    status = snap["status"]
    assert (status["strategy"], status["native"]) == ("host-copy", False)
    assert "csi-snapshot needs snapshot" in status["fallbackReason"]
    chosen = next(c for c in status["conditions"] if c["type"] == "StrategyChosen")
    assert chosen["reason"] == "HostCopy"
    kind, reason, message = _events(fake, "s1")[0]
    assert (kind, reason) == ("Warning", "FallbackStrategy") and "because" in message
    notes = _get(ctx, kinds.PVC, "s1-root")["metadata"]["annotations"]
    assert notes["csi-vm.io/strategy"] == "vm_snapshot/host-copy"
    assert "csi-snapshot needs snapshot" in notes["csi-vm.io/fallback-reason"]
    _job_done(fake, "s1-root-copy", ok=False)
    assert _pass(ctx, kinds.SNAPSHOT, "s1")["status"]["phase"] == "Failed"


def test_snapshot_without_a_report_takes_the_safe_rung(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.vm("web"), v.snapshot("s1", vm_name="web"))
    status = _pass(ctx, kinds.SNAPSHOT, "s1")["status"]
    assert status["strategy"] == "host-copy"
    assert "no StorageCapabilityReport" in status["fallbackReason"]


def test_snapshot_of_a_missing_vm_is_refused(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.snapshot("s1", vm_name="ghost"))
    status = _pass(ctx, kinds.SNAPSHOT, "s1")["status"]
    assert status["phase"] == "VMNotFound"
    assert [r for _, r, _ in _events(fake, "s1")] == ["VMNotFound"]


def _ready_snapshot(fake: fakekube.FakeKube, ctx: context.Context, plan: dict) -> None:  # type: ignore[type-arg]
    fake.add(v.report("fast", plan), v.vm("web"), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.SNAPSHOT, "s1")
    if plan["vm_snapshot"][0] == "csi-snapshot":
        _snap_ready(fake, "s1-root")
    else:
        _job_done(fake, "s1-root-copy")
    assert _pass(ctx, kinds.SNAPSHOT, "s1")["status"]["phase"] == "Ready"


def test_restore_native_claims_from_the_snapshot_then_makes_the_vm(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _ready_snapshot(fake, ctx, v.NATIVE)
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    _pass(ctx, kinds.RESTORE, "r1")
    pvc = _get(ctx, kinds.PVC, "web2-root")
    assert pvc["spec"]["dataSource"] == {
        "apiGroup": "snapshot.storage.k8s.io",
        "kind": "VolumeSnapshot",
        "name": "s1-root",
    }
    _bind(fake, "web2-root")
    restored = _pass(ctx, kinds.RESTORE, "r1")
    assert (restored["status"]["phase"], restored["status"]["strategy"]) == ("Ready", "csi-restore")
    vm = _get(ctx, kinds.VM, "web2")
    assert vm["spec"]["disks"][0]["claimName"] == "web2-root"
    assert _get(ctx, kinds.PVC, "web2-root")["metadata"]["ownerReferences"][0]["kind"] == "CsiVM"


@pytest.mark.parametrize(
    ("binding", "ready_before_bound"), [("WaitForFirstConsumer", True), ("Immediate", False)]
)
def test_restore_on_a_first_consumer_class_is_done_once_its_claim_waits_for_the_vm(
    fake: fakekube.FakeKube, ctx: context.Context, binding: str, ready_before_bound: bool
) -> None:
    # Nothing consumes a stopped VM's restored claim: on a WaitForFirstConsumer
    # class it binds, and the driver restores the data, at the VM's first start.
    fake.add(kubeobjects.storage_class("fast", kubeobjects.CSI_VM_LOCAL, binding=binding))
    _ready_snapshot(fake, ctx, v.NATIVE)
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    _pass(ctx, kinds.RESTORE, "r1")
    restored = _pass(ctx, kinds.RESTORE, "r1")
    assert _get(ctx, kinds.PVC, "web2-root").get("status", {}).get("phase") != "Bound"
    assert (restored["status"]["phase"] == "Ready") is ready_before_bound
    assert _exists(ctx, kinds.VM, "web2") is ready_before_bound


def _exists(ctx: context.Context, res, name: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        _get(ctx, res, name)
    except errors.NotFound:
        return False
    return True


def test_restore_of_a_host_copied_snapshot_copies_again(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _ready_snapshot(fake, ctx, v.BASIC)
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    status = _pass(ctx, kinds.RESTORE, "r1")["status"]
    assert status["strategy"] == "host-copy"
    assert "taken by host copy" in status["fallbackReason"]
    job = _get(ctx, kinds.JOB, "web2-root-copy")
    assert (
        job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
        == "s1-root"
    )


def test_restore_waits_for_its_snapshot(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.SNAPSHOT, "s1")
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    assert _pass(ctx, kinds.RESTORE, "r1")["status"]["phase"] == "SnapshotNotReady"


@pytest.mark.parametrize(
    ("plan", "strategy", "made"),
    [
        (v.NATIVE, "csi-clone", "PersistentVolumeClaim"),
        (v.SNAPSHOT_ONLY, "snapshot-restore", "VolumeSnapshot"),
        (v.BASIC, "host-copy", "Job"),
    ],
    ids=["native-clone", "snapshot-restore-fallback", "host-copy-fallback"],
)
def test_clone_takes_the_rung_its_report_plans(
    fake: fakekube.FakeKube,
    ctx: context.Context,
    plan: dict,
    strategy: str,
    made: str,  # type: ignore[type-arg]
) -> None:
    fake.add(v.report("fast", plan), v.vm("web"), v.clone("c1", source="web", target="web2"))
    status = _pass(ctx, kinds.CLONE, "c1")["status"]
    assert status["strategy"] == strategy
    if made == "PersistentVolumeClaim":
        assert _get(ctx, kinds.PVC, "web2-root")["spec"]["dataSource"] == {
            "kind": "PersistentVolumeClaim",
            "name": "web-root",
        }
    elif made == "VolumeSnapshot":
        assert (
            _get(ctx, kinds.VOLUME_SNAPSHOT, "web2-root-tmp")["spec"]["source"][
                "persistentVolumeClaimName"
            ]
            == "web-root"
        )
        _snap_ready(fake, "web2-root-tmp")
        _pass(ctx, kinds.CLONE, "c1")
        assert _get(ctx, kinds.PVC, "web2-root")["spec"]["dataSource"]["name"] == "web2-root-tmp"
    else:
        assert _get(ctx, kinds.JOB, "web2-root-copy")["spec"]["template"]["spec"]["containers"][0][
            "command"
        ][:3] == ["csi-vm", "image", "copy"]
    warned = [t for t, r, _ in _events(fake, "c1") if r == "FallbackStrategy"]
    assert warned == ([] if strategy == "csi-clone" else ["Warning"])


@pytest.mark.parametrize(
    ("plan", "strategy"),
    [(v.NATIVE, "shared-volume"), (v.BASIC, "storage-migration")],
    ids=["shared", "storage-copy-fallback"],
)
def test_migration_records_the_strategy_for_the_node_agent(
    fake: fakekube.FakeKube,
    ctx: context.Context,
    plan: dict,
    strategy: str,  # type: ignore[type-arg]
) -> None:
    fake.add(
        v.report("fast", plan),
        v.vm("web", running=True),
        v.migration("m1", vm_name="web", node="n2"),
        v.node("n2"),
    )
    _pass(ctx, kinds.VM, "web")
    status = _pass(ctx, kinds.MIGRATION, "m1")["status"]
    assert (status["phase"], status["strategy"], status["targetNode"]) == (
        "Scheduled",
        strategy,
        "n2",
    )


def test_migration_of_a_stopped_vm_is_refused(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.vm("web"), v.migration("m1", vm_name="web", node="n2"))
    assert _pass(ctx, kinds.MIGRATION, "m1")["status"]["phase"] == "VMNotRunning"


def test_clone_onto_an_existing_vm_is_refused_before_anything_is_made(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.vm("web2"))
    fake.add(v.clone("c1", source="web", target="web2"))
    status = _pass(ctx, kinds.CLONE, "c1")["status"]
    assert status["phase"] == "TargetExists"
    with pytest.raises(errors.NotFound):
        _get(ctx, kinds.PVC, "web2-root")


def test_a_foreign_claim_of_the_target_name_is_never_taken(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.clone("c1", source="web", target="web2"))
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim"}
    fake.add({**claim, "metadata": {"name": "web2-root", "namespace": NS}, "spec": {}})
    status = _pass(ctx, kinds.CLONE, "c1")["status"]
    assert status["phase"] == "Rejected"
    assert "does not belong to CsiVMClone c1" in status["message"]
    assert "dataSource" not in _get(ctx, kinds.PVC, "web2-root")["spec"]


def test_a_finished_clone_is_left_alone(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.clone("c1", source="web", target="web2"))
    _pass(ctx, kinds.CLONE, "c1")
    _bind(fake, "web2-root")
    done = _pass(ctx, kinds.CLONE, "c1")
    assert done["status"]["phase"] == "Ready"
    vm = _get(ctx, kinds.VM, "web2")
    assert vm["metadata"]["annotations"]["csi-vm.io/made-by"] == done["metadata"]["uid"]
    again = _pass(ctx, kinds.CLONE, "c1")  # the claim is the VM's now: nothing to redo
    assert again["metadata"]["resourceVersion"] == done["metadata"]["resourceVersion"]
