"""An operation keeps the strategy it started with when its report changes (fake API server).

Each test starts an operation on one plan, changes the StorageClass's
report to another (a probe finished, the driver was upgraded), reconciles
again and checks that nothing of the other strategy was made.
"""

from __future__ import annotations

from typing import Any

import pytest

from csi_vm import errors
from csi_vm.controller import context, run
from csi_vm.crd import kinds
from tests.support import fakekube
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS


def _get(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    return ctx.objs.get(res, name, namespace=NS if res.namespaced else "")


def _pass(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    run.reconcile(ctx, res, _get(ctx, res, name))
    return _get(ctx, res, name)


def _replan(fake: fakekube.FakeKube, plan: dict[str, tuple[str, bool, str]]) -> None:
    """The report of class "fast" now plans ``plan``."""
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, kinds.REPORT.plural)
    assert res is not None
    status = v.report("fast", plan)["status"]
    fake.store.patch(res, "", "fast", {"status": status}, subresource="status")


def _absent(ctx: context.Context, res: Any, name: str) -> bool:
    try:
        _get(ctx, res, name)
    except errors.NotFound:
        return True
    return False


def test_a_snapshot_copying_by_host_stays_a_host_copy(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.SNAPSHOT, "s1")
    _replan(fake, v.NATIVE)
    status = _pass(ctx, kinds.SNAPSHOT, "s1")["status"]
    assert (status["strategy"], status["disks"][0]["strategy"]) == ("host-copy", "host-copy")
    assert "csi-snapshot needs snapshot" in status["fallbackReason"]
    assert _absent(ctx, kinds.VOLUME_SNAPSHOT, "s1-root")
    assert _get(ctx, kinds.JOB, "s1-root-copy")


def test_the_strategy_is_recorded_before_anything_is_made(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    # Someone else's claim has the copy's name: the first pass makes nothing.
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {}}
    fake.add({**claim, "metadata": {"name": "s1-root", "namespace": NS}})
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.snapshot("s1", vm_name="web"))
    status = _pass(ctx, kinds.SNAPSHOT, "s1")["status"]
    assert status["phase"] == "Rejected"
    assert status["disks"][0]["strategy"] == "host-copy"
    ctx.objs.delete(kinds.PVC, "s1-root", namespace=NS)
    _replan(fake, v.NATIVE)
    assert _pass(ctx, kinds.SNAPSHOT, "s1")["status"]["strategy"] == "host-copy"
    assert _absent(ctx, kinds.VOLUME_SNAPSHOT, "s1-root")


def test_announced_once_however_often_it_is_reconciled(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.snapshot("s1", vm_name="web"))
    for _ in range(3):
        _pass(ctx, kinds.SNAPSHOT, "s1")
    res = fake.store.resource("", "v1", "events")
    assert res is not None
    reasons = [r for _, r, _ in v.events_about(fake.store.list_objects(res)[0], "s1")]
    assert reasons == ["FallbackStrategy"]


def test_a_clone_by_a_temporary_snapshot_does_not_turn_into_a_csi_clone(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.SNAPSHOT_ONLY), v.vm("web"))
    fake.add(v.clone("c1", source="web", target="web2"))
    _pass(ctx, kinds.CLONE, "c1")
    _replan(fake, v.NATIVE)
    assert _pass(ctx, kinds.CLONE, "c1")["status"]["strategy"] == "snapshot-restore"
    assert _absent(ctx, kinds.PVC, "web2-root")  # no claim cloned from the source meanwhile


def test_a_native_restore_is_not_failed_by_a_later_plan(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.SNAPSHOT, "s1")
    snaps = fake.store.resource("snapshot.storage.k8s.io", "v1", "volumesnapshots")
    assert snaps is not None
    fake.store.patch(snaps, NS, "s1-root", {"status": {"readyToUse": True}}, subresource="status")
    assert _pass(ctx, kinds.SNAPSHOT, "s1")["status"]["phase"] == "Ready"
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    _pass(ctx, kinds.RESTORE, "r1")
    # A plan without restores would fail a VolumeSnapshot's disk outright.
    _replan(fake, v.BASIC)
    status = _pass(ctx, kinds.RESTORE, "r1")["status"]
    assert (status["strategy"], status["phase"]) == ("csi-restore", "Pending")


def test_a_scheduled_migration_keeps_its_strategy(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web", running=True), v.node("n2"))
    fake.add(v.migration("m1", vm_name="web", node="n2"))
    _pass(ctx, kinds.VM, "web")  # its claims
    assert _pass(ctx, kinds.MIGRATION, "m1")["status"]["strategy"] == "shared-volume"
    _replan(fake, v.BASIC)
    status = _pass(ctx, kinds.MIGRATION, "m1")["status"]
    assert (status["phase"], status["strategy"]) == ("Scheduled", "shared-volume")
    assert _absent(ctx, kinds.PVC, "m1-root")  # no storage-migration claims


def test_a_changed_migration_spec_is_decided_anew(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web", running=True), v.node("n2"), v.node("n3"))
    fake.add(v.migration("m1", vm_name="web", node="n2"))
    _pass(ctx, kinds.VM, "web")  # its claims
    _pass(ctx, kinds.MIGRATION, "m1")
    _replan(fake, v.BASIC)
    ctx.objs.patch(kinds.MIGRATION, "m1", {"spec": {"targetNode": "n3"}}, namespace=NS)
    status = _pass(ctx, kinds.MIGRATION, "m1")["status"]
    assert (status["targetNode"], status["strategy"]) == ("n3", "storage-migration")


def _grow(ctx: context.Context, size: str) -> None:
    disks = [{"name": "root", "size": size, "storageClassName": "fast"}]
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": disks}}, namespace=NS)


def test_a_copy_to_a_larger_claim_is_not_turned_into_a_resize(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"))
    _pass(ctx, kinds.VM, "web")
    _grow(ctx, "2Gi")
    resize = _pass(ctx, kinds.VM, "web")["status"]["disks"][0]["resize"]
    assert (resize["phase"], resize["strategy"]) == ("Pending", "copy-to-larger")
    _replan(fake, v.NATIVE)
    resize = _pass(ctx, kinds.VM, "web")["status"]["disks"][0]["resize"]
    assert (resize["phase"], resize["strategy"]) == ("Copying", "copy-to-larger")
    requested = _get(ctx, kinds.PVC, "web-root")["spec"]["resources"]["requests"]["storage"]
    assert requested == "1Gi"  # never asked of the resizer as well


def test_a_vm_waiting_to_stop_for_a_copy_still_copies_once_stopped(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web", running=True))
    _pass(ctx, kinds.VM, "web")
    _grow(ctx, "2Gi")
    assert _pass(ctx, kinds.VM, "web")["status"]["disks"][0]["resize"]["phase"] == "WaitingForStop"
    _replan(fake, v.NATIVE)
    ctx.objs.patch(kinds.VM, "web", {"spec": {"running": False}}, namespace=NS)
    resize = _pass(ctx, kinds.VM, "web")["status"]["disks"][0]["resize"]
    assert (resize["phase"], resize["strategy"]) == ("Copying", "copy-to-larger")
    assert _get(ctx, kinds.JOB, "web-root-2gi-copy")
