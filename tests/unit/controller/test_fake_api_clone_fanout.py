"""A CsiVMClone with count and nameTemplate, reconciled against the fake API server.

Each clone of a fan-out is made as a single clone's target is, and stands on
its own in status.clones; the object is Ready when every clone is, Failed
when all have ended and one failed.
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
NAMES = ["lab-01", "lab-02", "lab-03"]


def _get(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    return ctx.objs.get(res, name, namespace=NS)


def _pass(ctx: context.Context, name: str = "lab") -> dict[str, Any]:
    run.reconcile(ctx, kinds.CLONE, _get(ctx, kinds.CLONE, name))
    return _get(ctx, kinds.CLONE, name)


def _status_patch(
    fake: fakekube.FakeKube, path: tuple[str, str, str], name: str, body: Any
) -> None:
    res = fake.store.resource(*path)
    assert res is not None
    fake.store.patch(res, NS, name, {"status": body}, subresource="status")


def _bind(fake: fakekube.FakeKube, name: str) -> None:
    _status_patch(fake, ("", "v1", "persistentvolumeclaims"), name, {"phase": "Bound"})


def _job_done(fake: fakekube.FakeKube, name: str, *, ok: bool = True) -> None:
    failed = {"conditions": [{"type": "Failed", "status": "True"}]}
    _status_patch(fake, ("batch", "v1", "jobs"), name, {"succeeded": 1} if ok else failed)


def _clones(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["name"], c["phase"]) for c in obj["status"]["clones"]]


def _events(fake: fakekube.FakeKube) -> list[tuple[str, str, str]]:
    res = fake.store.resource("", "v1", "events")
    assert res is not None
    return v.events_about(fake.store.list_objects(res)[0], "lab")


def _exists(ctx: context.Context, res: Any, name: str) -> bool:
    try:
        _get(ctx, res, name)
    except errors.NotFound:
        return False
    return True


def _lab(fake: fakekube.FakeKube, plan: dict[str, Any], count: int = 3) -> None:
    fake.add(v.report("fast", plan), v.vm("web"))
    fake.add(v.fan_out("lab", source="web", count=count, template="lab-{i:02}"))


def test_native_fan_out_makes_every_vm_from_its_own_clone(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _lab(fake, v.NATIVE)
    first = _pass(ctx)
    assert _clones(first) == [(n, "Pending") for n in NAMES]
    assert (first["status"]["phase"], first["status"]["done"]) == ("Pending", 0)
    for name in NAMES:
        source = _get(ctx, kinds.PVC, f"{name}-root")["spec"]["dataSource"]
        assert source == {"kind": "PersistentVolumeClaim", "name": "web-root"}
    _bind(fake, "lab-02-root")
    middle = _pass(ctx)
    assert _clones(middle) == [("lab-01", "Pending"), ("lab-02", "Ready"), ("lab-03", "Pending")]
    assert middle["status"]["message"] == "1 of 3 clones made"
    _bind(fake, "lab-01-root")
    _bind(fake, "lab-03-root")
    done = _pass(ctx)
    assert (done["status"]["phase"], done["status"]["done"], done["status"]["failed"]) == (
        "Ready",
        3,
        0,
    )
    for name in NAMES:
        vm = _get(ctx, kinds.VM, name)
        assert vm["metadata"]["annotations"]["csi-vm.io/made-by"] == done["metadata"]["uid"]
        assert vm["spec"]["disks"][0]["claimName"] == f"{name}-root"
    assert [r for _, r, _ in _events(fake)].count("Succeeded") == 1
    assert _pass(ctx)["metadata"]["resourceVersion"] == done["metadata"]["resourceVersion"]


def test_snapshot_fan_out_restores_every_clone_from_one_snapshot(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _lab(fake, v.SNAPSHOT_ONLY)
    status = _pass(ctx)["status"]
    assert status["strategy"] == "snapshot-restore"
    snaps = fake.store.resource("snapshot.storage.k8s.io", "v1", "volumesnapshots")
    assert snaps is not None
    made = [s["metadata"]["name"] for s in fake.store.list_objects(snaps)[0]]
    assert made == ["lab-root-fanout-tmp"]
    assert not _exists(ctx, kinds.PVC, "lab-01-root")  # restores wait for the snapshot
    _status_patch(fake, ("snapshot.storage.k8s.io", "v1", "volumesnapshots"),
                  "lab-root-fanout-tmp", {"readyToUse": True})  # fmt: skip
    _pass(ctx)
    for name in NAMES:
        source = _get(ctx, kinds.PVC, f"{name}-root")["spec"]["dataSource"]
        assert source["kind"] == "VolumeSnapshot"
        assert source["name"] == "lab-root-fanout-tmp"


def test_a_failed_copy_fails_its_clone_and_the_others_are_made(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _lab(fake, v.BASIC)
    assert _pass(ctx)["status"]["strategy"] == "host-copy"
    _job_done(fake, "lab-01-root-copy")
    _job_done(fake, "lab-02-root-copy", ok=False)
    middle = _pass(ctx)
    assert _clones(middle) == [("lab-01", "Ready"), ("lab-02", "Failed"), ("lab-03", "Pending")]
    assert middle["status"]["phase"] == "Pending"
    _job_done(fake, "lab-03-root-copy")
    end = _pass(ctx)["status"]
    assert (end["phase"], end["done"], end["failed"]) == ("Failed", 2, 1)
    assert end["message"] == "2 of 3 clones made, 1 failed: lab-02: disk root: Failed"
    assert end["clones"][1]["message"] == "disk root: Failed"
    assert _exists(ctx, kinds.VM, "lab-01")
    assert not _exists(ctx, kinds.VM, "lab-02")
    failed = [(t, m) for t, r, m in _events(fake) if r == "Failed"]
    assert failed == [("Warning", "vm_clone fan-out by host-copy: " + end["message"])]


def test_a_settled_clone_is_not_made_again(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    _lab(fake, v.BASIC, count=2)
    _pass(ctx)
    _job_done(fake, "lab-01-root-copy", ok=False)
    assert _clones(_pass(ctx)) == [("lab-01", "Failed"), ("lab-02", "Pending")]
    _job_done(fake, "lab-01-root-copy")  # the Job's state changes later: the verdict stays
    assert _clones(_pass(ctx)) == [("lab-01", "Failed"), ("lab-02", "Pending")]


def test_a_name_taken_by_another_vm_fails_only_that_clone(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.vm("lab-02"))
    _lab(fake, v.NATIVE)
    status = _pass(ctx)["status"]
    assert _clones({"status": status})[1] == ("lab-02", "Failed")
    assert (
        status["clones"][1]["message"] == "CsiVM lab-02 already exists; choose another target name"
    )
    assert _get(ctx, kinds.VM, "lab-02")["spec"]["disks"][0].get("claimName") is None
    assert not _exists(ctx, kinds.PVC, "lab-02-root")
    assert _exists(ctx, kinds.PVC, "lab-03-root")


def test_a_foreign_claim_of_a_clone_name_fails_only_that_clone(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "spec": {}}
    fake.add({**claim, "metadata": {"name": "lab-01-root", "namespace": NS}})
    _lab(fake, v.NATIVE)
    status = _pass(ctx)["status"]
    assert _clones({"status": status}) == [
        ("lab-01", "Failed"),
        ("lab-02", "Pending"),
        ("lab-03", "Pending"),
    ]
    assert "does not belong to CsiVMClone lab" in status["clones"][0]["message"]
    assert "dataSource" not in _get(ctx, kinds.PVC, "lab-01-root")["spec"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"targetVMName": "one", "count": 2, "nameTemplate": "lab-{i}"}, "both given"),
        ({"count": 2}, "count and nameTemplate go together"),
        ({"nameTemplate": "lab-{i}"}, "count and nameTemplate go together"),
        ({"count": 2, "nameTemplate": "lab"}, "must hold {i} or {i:0N}"),
        ({"count": 2, "nameTemplate": "Lab-{i}"}, "gives an invalid name: VM name 'Lab-1' must be"),
        ({"count": 0, "nameTemplate": "lab-{i}"}, "invalid spec"),
        ({}, "no target"),
    ],
    ids=["target-and-count", "count-alone", "template-alone", "no-field", "bad-name", "zero",
         "nothing"],
)  # fmt: skip
def test_a_spec_that_cannot_work_is_rejected_before_anything_is_made(
    fake: fakekube.FakeKube, ctx: context.Context, spec: dict[str, Any], message: str
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"))
    obj = v.clone("lab", source="web", target="x")
    obj["spec"] = {"sourceVMName": "web", **spec}
    fake.add(obj)
    status = _pass(ctx)["status"]
    assert status["phase"] == "Rejected"
    assert message in status["message"]
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    assert fake.store.list_objects(pvcs)[0] == []


def test_a_vm_made_on_a_pass_whose_status_was_lost_counts_as_made(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _lab(fake, v.NATIVE, count=1)
    _pass(ctx)
    _bind(fake, "lab-01-root")
    assert _clones(_pass(ctx)) == [("lab-01", "Ready")]
    # As if that pass had made the VM but died before writing its status:
    # the claim is the VM's now, and the clone is made all the same.
    _status_patch(fake, (kinds.GROUP, kinds.VERSION, "csivmclones"), "lab",
                  {"phase": "Pending", "clones": []})  # fmt: skip
    assert _clones(_pass(ctx)) == [("lab-01", "Ready")]
