"""Each reconciler puts its host-copy Job where the source can be read (fake API server).

A VM's disk is published on the VM's node by its holder Pod, and a
ReadWriteOnce volume attaches to one node only: a snapshot, clone or
copy-to-larger of such a disk must copy on that node. A snapshot's own copy
belongs to no VM; a restore from it follows its volume's nodeAffinity.
"""

from __future__ import annotations

from typing import Any

import pytest

from csi_vm.controller import context, run, storage
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS


def _get(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    return ctx.objs.get(res, name, namespace=NS if res.namespaced else "")


def _pass(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    run.reconcile(ctx, res, _get(ctx, res, name))
    return _get(ctx, res, name)


def _pinned_to(job: dict[str, Any]) -> list[str]:
    """The node names a Job's pod is required to run on, by name."""
    pod = job["spec"]["template"]["spec"]
    required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    return [
        value
        for term in required["nodeSelectorTerms"]
        for field in term.get("matchFields", ())
        for value in field["values"]
    ]


def _on_node(ctx: context.Context, vm: str, node: str, *, running: bool = False) -> None:
    ctx.objs.patch(kinds.VM, vm, {"spec": {"nodeName": node, "running": running}}, namespace=NS)


def test_a_snapshot_copies_on_the_vms_node(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.snapshot("s1", vm_name="web"))
    _on_node(ctx, "web", "n1")
    _pass(ctx, kinds.SNAPSHOT, "s1")
    job = _get(ctx, kinds.JOB, "s1-root-copy")
    assert _pinned_to(job) == ["n1"]
    assert job["spec"]["activeDeadlineSeconds"] == storage.copy_deadline("1Gi")


def test_a_clone_copies_where_the_source_vm_runs_now(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.clone("c1", source="web", target="web2"))
    _on_node(ctx, "web", "n1", running=True)
    # The agent moved it since (a migration): status says where it is now.
    vms = fake.store.resource(kinds.GROUP, kinds.VERSION, kinds.VM.plural)
    assert vms is not None
    fake.store.patch(vms, NS, "web", {"status": {"nodeName": "n2"}}, subresource="status")
    _pass(ctx, kinds.CLONE, "c1")
    assert _pinned_to(_get(ctx, kinds.JOB, "web2-root-copy")) == ["n2"]


def test_a_copy_to_a_larger_claim_runs_on_the_vms_node(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.node("n1"))
    _on_node(ctx, "web", "n1")
    _pass(ctx, kinds.VM, "web")
    grown = [{"name": "root", "size": "2Gi", "storageClassName": "fast"}]
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": grown}}, namespace=NS)
    _pass(ctx, kinds.VM, "web")  # records the strategy
    _pass(ctx, kinds.VM, "web")  # copies
    job = _get(ctx, kinds.JOB, "web-root-2gi-copy")
    assert _pinned_to(job) == ["n1"]
    assert job["spec"]["activeDeadlineSeconds"] == storage.copy_deadline("2Gi")


def test_a_restore_of_a_copied_snapshot_follows_the_copys_volume(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.SNAPSHOT, "s1")
    fake.add(kubeobjects.local_volume("pv-s1-root", host="worker-3"))
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    jobs = fake.store.resource("batch", "v1", "jobs")
    assert pvcs is not None and jobs is not None
    fake.store.patch(pvcs, NS, "s1-root", {"spec": {"volumeName": "pv-s1-root"}})
    fake.store.patch(jobs, NS, "s1-root-copy", {"status": {"succeeded": 1}}, subresource="status")
    assert _pass(ctx, kinds.SNAPSHOT, "s1")["status"]["phase"] == "Ready"
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    _pass(ctx, kinds.RESTORE, "r1")
    pod = _get(ctx, kinds.JOB, "web2-root-copy")["spec"]["template"]["spec"]
    required = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == _get(ctx, kinds.PV, "pv-s1-root")["spec"]["nodeAffinity"]["required"]
    assert "tolerations" not in pod


def test_a_vm_on_no_node_leaves_the_choice_to_the_scheduler(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web"), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.SNAPSHOT, "s1")
    assert "affinity" not in _get(ctx, kinds.JOB, "s1-root-copy")["spec"]["template"]["spec"]
