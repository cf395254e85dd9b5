"""The controller loop against the fake API server: list, watch, lead (a fake, not a cluster)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from csi_vm import errors
from csi_vm.controller import context, leader, run
from csi_vm.crd import kinds
from tests.support import fakekube, fakekube_routes
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _wait(check: Callable[[], bool], *, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _status(ctx: context.Context, res, name: str) -> dict:  # type: ignore[no-untyped-def]
    return ctx.objs.get(res, name, namespace=v.NS).get("status") or {}


def test_watch_reconciles_objects_created_after_the_list(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"))
    controller = run.Controller(ctx=ctx, resync=2)
    stop = threading.Event()
    worker = threading.Thread(target=controller.follow, args=(kinds.SNAPSHOT, stop), daemon=True)
    worker.start()
    try:
        time.sleep(0.3)  # the first list is done; what follows arrives by watch
        fake.add(v.snapshot("s1", vm_name="web"))
        _wait(lambda: _status(ctx, kinds.SNAPSHOT, "s1").get("strategy") == "csi-snapshot")
        watches = [r for r in fake.requests if fakekube_routes.flag(r.query, "watch")]
        assert any(r.path.endswith("/csivmsnapshots") for r in watches)
    finally:
        stop.set()
        worker.join(timeout=10)


def test_a_relist_after_a_compacted_history_catches_up(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.vm("web"))
    controller = run.Controller(ctx=ctx, resync=1)
    version = controller.sync(kinds.VM)
    fake.store.compact()
    fake.add(v.vm("db"))
    events = ctx.objs.watch(kinds.VM, since=version, timeout=1)
    with pytest.raises(errors.Rejected, match="HTTP 410"):
        next(iter(events))
    controller.sync(kinds.VM)
    assert _status(ctx, kinds.VM, "db")["phase"] == "Provisioning"


def test_only_the_leader_works(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.vm("web"))
    controller = run.Controller(ctx=ctx, resync=1)
    elector = leader.Elector(objs=ctx.objs, namespace="csi-vm", name="lease", identity="other")
    assert elector.try_acquire()  # another replica holds the Lease
    mine = leader.Elector(objs=ctx.objs, namespace="csi-vm", name="lease", identity="me")
    stop = threading.Event()
    worker = threading.Thread(target=run.run, args=(controller, mine, stop), daemon=True)
    worker.start()
    try:
        time.sleep(0.5)
        assert "status" not in ctx.objs.get(kinds.VM, "web", namespace=v.NS)
        elector.release()
        _wait(lambda: bool(_status(ctx, kinds.VM, "web")), seconds=leader.RENEW_SECONDS * 3)
    finally:
        stop.set()
        worker.join(timeout=15)
    lease = ctx.objs.get(kinds.LEASE, "lease", namespace="csi-vm")
    assert lease["spec"].get("holderIdentity") in (None, "")  # handed back on stop
