"""The controller's declared RBAC list against the calls it really makes (fake API server).

A scenario drives every reconciler down native and fallback rungs, the
loop's list and watch, and leader election; the fake records each request.
Every call must be declared in `csi_vm.controller.rbac` (or a real cluster
would answer 403), and every declared grant must be used (or the chart,
which the chart tests hold to the same list, grants too much).
"""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse

import pytest

from csi_vm.controller import context, launchpod, leader, rbac, run, verify
from csi_vm.crd import kinds
from tests.support import fakekube, fakekube_routes, kubeobjects
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(120)]

Grant = tuple[str, str, str]


def _calls(fake: fakekube.FakeKube) -> set[Grant]:
    found = set()
    for request in fake.requests:
        parts = [p for p in urllib.parse.urlsplit(request.path).path.split("/") if p]
        target = fakekube_routes.target(fake.store, parts)
        if target is None:
            continue  # discovery
        verb = fakekube_routes.verb(request.method, target, request.query)
        resource = target.res.plural + (f"/{target.subresource}" if target.subresource else "")
        found.add((target.res.group, resource, verb))
    return found


def _declared() -> set[Grant]:
    rules = rbac.CONTROLLER + rbac.LEADER_ELECTION
    return {(r.group, r.resource, verb) for r in rules for verb in r.verbs}


def _scenario(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(*kubeobjects.typical_cluster())
    fake.add(v.report("fast", v.NATIVE), v.report("slow", v.SNAPSHOT_ONLY))
    fake.add(v.report("basic", v.BASIC), v.vm("old", sc="basic"), v.snapshot("s2", vm_name="old"))
    fake.add(v.vm("web"), v.vm("db", sc="slow", running=True))
    fake.add(v.snapshot("s1", vm_name="web"), v.clone("c1", source="db", target="db2"))
    fake.add(v.clone("c2", source="web", target="web2"), v.migration("m1", vm_name="db", node="n2"))
    controller = run.Controller(ctx=ctx, resync=1)
    elector = leader.Elector(objs=ctx.objs, namespace="csi-vm", name="lease", identity="me")
    assert elector.try_acquire() and elector.try_acquire()
    for res in run.RECONCILERS:
        version = controller.sync(res)
        list(ctx.objs.watch(res, since=version, timeout=1))
    _grow(fake, ctx)
    _verify(fake, ctx)
    _finish_snapshot_and_restore(fake, ctx)
    _finish_clone(fake, ctx)
    _stale_first_writes(fake, ctx)
    _launcher_migration(fake, ctx)


def _launcher_migration(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    """With launcher Pods: a migration's target Pod, handed to the VM once it succeeded."""
    lctx = dataclasses.replace(ctx, launcher=launchpod.Settings(image="libvirt:test"))
    moved = v.vm("mv", sc="slow", running=True, mode="Block")
    moved["spec"]["nodeName"] = "n1"
    fake.add(v.node("n1"), v.node("n2"), moved, v.migration("m3", vm_name="mv", node="n2"))
    run.reconcile(lctx, kinds.VM, _read(fake, "csivms", "mv"))  # its claim and launcher Pod
    run.reconcile(lctx, kinds.MIGRATION, _read(fake, "csivmmigrations", "m3"))
    assert _read(fake, "csivmmigrations", "m3")["status"]["phase"] == "Scheduled"
    fake.store.patch(_res(fake, "csivms"), v.NS, "mv", {"status": {"nodeName": "n2"}},
                     subresource="status")  # fmt: skip
    fake.store.patch(_res(fake, "csivmmigrations"), v.NS, "m3", {"status": {"phase": "Succeeded"}},
                     subresource="status")  # fmt: skip
    run.reconcile(lctx, kinds.MIGRATION, _read(fake, "csivmmigrations", "m3"))


def _verify(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    """Verification of gp3 (WaitForFirstConsumer: holder Pods), run out to its timeout."""
    fake.store.patch(_res(fake, "storagecapabilityreports"), "", "gp3", {"spec": {"verify": True}})
    sc = ctx.objs.list(kinds.STORAGE_CLASS)[0]
    gp3 = next(o for o in sc if o["metadata"]["name"] == "gp3")
    run.reconcile(ctx, kinds.STORAGE_CLASS, gp3)
    later = ctx.clock() + datetime.timedelta(seconds=verify.TIMEOUT + 1)
    run.reconcile(dataclasses.replace(ctx, clock=lambda: later), kinds.STORAGE_CLASS, gp3)
    report = fake.store.get(_res(fake, "storagecapabilityreports"), "", "gp3")
    assert report["status"]["verification"]["phase"] == "Done"


def _grow(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    """web grows natively; old (on a class without expansion) by a copy and a switch."""
    for name, sc in (("web", "fast"), ("old", "basic")):
        disks = [{"name": "root", "size": "5Gi", "storageClassName": sc}]
        fake.store.patch(_res(fake, "csivms"), v.NS, name, {"spec": {"disks": disks}})
        run.reconcile(ctx, kinds.VM, _read(fake, "csivms", name))
        run.reconcile(ctx, kinds.VM, _read(fake, "csivms", name))  # a copy starts on the 2nd
    jobs = fake.store.resource("batch", "v1", "jobs")
    assert jobs is not None
    fake.store.patch(jobs, v.NS, "old-root-5gi-copy", {"status": {"succeeded": 1}})
    run.reconcile(ctx, kinds.VM, _read(fake, "csivms", "old"))
    assert _read(fake, "csivms", "old")["spec"]["disks"][0]["claimName"] == "old-root-5gi"


def _finish_snapshot_and_restore(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    snaps = fake.store.resource("snapshot.storage.k8s.io", "v1", "volumesnapshots")
    assert snaps is not None
    fake.store.patch(snaps, v.NS, "s1-root", {"status": {"readyToUse": True}}, subresource="status")
    run.reconcile(ctx, kinds.SNAPSHOT, _read(fake, "csivmsnapshots", "s1"))
    # old has no node: its copy Job goes where the volume's nodeAffinity says.
    _bind_to_local_volume(fake, "old-root-5gi")
    run.reconcile(ctx, kinds.SNAPSHOT, _read(fake, "csivmsnapshots", "s2"))  # its copy Job again
    fake.add(v.restore("r1", snapshot_name="s1", target="web3"))
    run.reconcile(ctx, kinds.RESTORE, _read(fake, "csivmrestores", "r1"))
    _bind(fake, "web3-root")
    run.reconcile(ctx, kinds.RESTORE, _read(fake, "csivmrestores", "r1"))
    assert _read(fake, "csivms", "web3")


def _finish_clone(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    _bind(fake, "web2-root")
    run.reconcile(ctx, kinds.CLONE, _read(fake, "csivmclones", "c2"))
    assert _read(fake, "csivms", "web2")


def _stale_first_writes(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    """A user edits each new object before the controller's first status write.

    The write then meets 409 Conflict and reads the object again (get), as
    on a real cluster where the controller and the agent write one object.
    """
    fake.add(v.restore("r2", snapshot_name="s1", target="web4"))
    fake.add(v.clone("c3", source="web", target="web5"))
    fake.add(v.migration("m2", vm_name="web", node="n2"))
    for plural, res, name in (
        ("csivmrestores", kinds.RESTORE, "r2"),
        ("csivmclones", kinds.CLONE, "c3"),
        ("csivmmigrations", kinds.MIGRATION, "m2"),
    ):
        stale = _read(fake, plural, name)
        fake.store.patch(
            _res(fake, plural), v.NS, name, {"metadata": {"labels": {"edited": "yes"}}}
        )
        run.reconcile(ctx, res, stale)


def _bind_to_local_volume(fake: fakekube.FakeKube, claim: str) -> None:
    fake.add(kubeobjects.local_volume(f"pv-{claim}", host="n1"))
    res = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert res is not None
    fake.store.patch(res, v.NS, claim, {"spec": {"volumeName": f"pv-{claim}"}})
    _bind(fake, claim)


def _bind(fake: fakekube.FakeKube, name: str) -> None:
    res = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert res is not None
    fake.store.patch(res, v.NS, name, {"status": {"phase": "Bound"}}, subresource="status")


def test_every_call_is_declared_and_every_grant_used(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _scenario(fake, ctx)
    calls, declared = _calls(fake), _declared()
    assert not calls - declared, f"called but not declared in rbac.py: {sorted(calls - declared)}"
    assert not declared - calls, f"declared but never called: {sorted(declared - calls)}"


def _res(fake: fakekube.FakeKube, plural: str) -> fakekube.Resource:
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, plural)
    assert res is not None
    return res


def _read(fake: fakekube.FakeKube, plural: str, name: str) -> dict:  # type: ignore[type-arg]
    """Read as the test, straight from the store: not a call of the controller's."""
    return fake.store.get(_res(fake, plural), v.NS, name)
