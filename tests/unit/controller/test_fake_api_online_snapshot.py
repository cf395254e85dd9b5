"""The controller's side of a snapshot of a VM in its launcher Pod, against the fake API.

The node agent is played by status patches (a fake): what it writes once it
froze, thawed or gave up. The real agent and guest are
tests/integration/cluster/test_online_ops.py's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from csi_vm import errors
from csi_vm.controller import context, launchpod, run
from csi_vm.crd import kinds, onlinesnap
from tests.support import fakekube
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS
NODE = "n1"
Obj = dict[str, Any]


@pytest.fixture
def launching(ctx: context.Context) -> context.Context:
    return dataclasses.replace(ctx, launcher=launchpod.Settings(image="libvirt:test"))


def _status(fake: fakekube.FakeKube, plural: str, name: str, status: Obj) -> None:
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, plural)
    assert res is not None
    fake.store.patch(res, NS, name, {"status": status}, subresource="status")


def _agent_says(fake: fakekube.FakeKube, phase: str, reason: str = "") -> None:
    online = {"phase": phase, "consistency": onlinesnap.CONSISTENT, "reason": reason}
    _status(fake, "csivmsnapshots", "s1", {onlinesnap.FIELD: online})


def _pass(ctx: context.Context) -> Obj:
    run.reconcile(ctx, kinds.SNAPSHOT, ctx.objs.get(kinds.SNAPSHOT, "s1", namespace=NS))
    return ctx.objs.get(kinds.SNAPSHOT, "s1", namespace=NS)


def _volume_snapshot(ctx: context.Context) -> Obj | None:
    try:
        return ctx.objs.get(kinds.VOLUME_SNAPSHOT, "s1-root", namespace=NS)
    except errors.NotFound:
        return None


def _running_vm(fake: fakekube.FakeKube) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web", running=True), v.snapshot("s1", vm_name="web"))
    _status(fake, "csivms", "web", {"phase": "Running", "nodeName": NODE})


def test_a_running_vm_is_snapshotted_only_once_its_agent_froze_it(
    fake: fakekube.FakeKube, launching: context.Context
) -> None:
    _running_vm(fake)
    snap = _pass(launching)
    assert _volume_snapshot(launching) is None
    assert onlinesnap.of(snap)["phase"] == onlinesnap.REQUESTED
    assert onlinesnap.of(snap)["nodeName"] == NODE
    assert snap["status"]["phase"] == "Pending"
    assert _pass(launching)["status"]["phase"] == "Pending"  # still asked, still none made
    assert _volume_snapshot(launching) is None

    _agent_says(fake, onlinesnap.FROZEN, "1 filesystem(s) frozen by the guest agent")
    _pass(launching)
    made = _volume_snapshot(launching)
    assert made is not None
    assert made["spec"]["source"]["persistentVolumeClaimName"] == "web-root"

    _agent_says(fake, onlinesnap.THAWED, "1 filesystem(s) frozen by the guest agent")
    res = fake.store.resource("snapshot.storage.k8s.io", "v1", "volumesnapshots")
    assert res is not None
    fake.store.patch(res, NS, "s1-root", {"status": {"readyToUse": True}}, subresource="status")
    snap = _pass(launching)
    assert snap["status"]["phase"] == "Ready"
    ready = next(c for c in snap["status"]["conditions"] if c["type"] == "Ready")
    assert onlinesnap.CONSISTENT in ready["message"]


def test_a_failed_hand_over_deletes_what_was_made(
    fake: fakekube.FakeKube, launching: context.Context
) -> None:
    _running_vm(fake)
    _pass(launching)
    _agent_says(fake, onlinesnap.FROZEN)
    _pass(launching)
    assert _volume_snapshot(launching) is not None
    _agent_says(fake, onlinesnap.FAILED, "not all taken within 60 s of the freeze")
    snap = _pass(launching)
    assert snap["status"]["phase"] == "Failed"
    assert _volume_snapshot(launching) is None
    ready = next(c for c in snap["status"]["conditions"] if c["type"] == "Ready")
    assert "not all taken within 60 s" in ready["message"]


def test_a_stopped_vm_is_snapshotted_at_once(
    fake: fakekube.FakeKube, launching: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.snapshot("s1", vm_name="web"))
    snap = _pass(launching)
    assert _volume_snapshot(launching) is not None
    assert onlinesnap.FIELD not in snap["status"]


def _backup_says(fake: fakekube.FakeKube, phase: str, reason: str = "") -> None:
    done = {"phase": phase, "consistency": onlinesnap.CONSISTENT, "reason": reason}
    _status(fake, "csivmsnapshots", "s1", {onlinesnap.BACKUP_FIELD: done})


def _maybe(ctx: context.Context, res: Any, name: str) -> Obj | None:
    try:
        return ctx.objs.get(res, name, namespace=NS)
    except errors.NotFound:
        return None


def test_a_running_vm_without_csi_snapshots_is_backed_up_by_its_agent(
    fake: fakekube.FakeKube, launching: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web", running=True), v.snapshot("s1", vm_name="web"))
    _status(fake, "csivms", "web", {"phase": "Running", "nodeName": NODE})
    snap = _pass(launching)
    status = snap["status"]
    assert (status["strategy"], status["fallback"]) == (onlinesnap.PUSH_BACKUP, True)
    assert onlinesnap.backup(snap)["phase"] == onlinesnap.BACKUP_REQUESTED
    assert _maybe(launching, kinds.JOB, "s1-root") is None  # no copy of a disk being written
    assert _maybe(launching, kinds.PVC, "s1-root") is not None
    holder = _maybe(launching, kinds.POD, onlinesnap.backup_holder("s1-root"))
    assert holder is not None
    assert NODE in str(holder["spec"]["affinity"])

    _backup_says(fake, onlinesnap.BACKED_UP, "1 filesystem(s) frozen by the guest agent")
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    fake.store.patch(pvcs, NS, "s1-root", {"status": {"phase": "Bound"}}, subresource="status")
    assert _pass(launching)["status"]["phase"] == "Pending"  # its holder Pod is deleted first
    snap = _pass(launching)
    assert snap["status"]["phase"] == "Ready"
    assert snap["status"]["disks"][0]["kind"] == "PersistentVolumeClaim"
    assert _maybe(launching, kinds.POD, onlinesnap.backup_holder("s1-root")) is None


def test_a_failed_backup_leaves_neither_claim_nor_holder(
    fake: fakekube.FakeKube, launching: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web", running=True), v.snapshot("s1", vm_name="web"))
    _status(fake, "csivms", "web", {"phase": "Running", "nodeName": NODE})
    _pass(launching)
    _backup_says(fake, onlinesnap.BACKUP_FAILED, "libvirt refused the backup")
    snap = _pass(launching)
    assert snap["status"]["phase"] == "Failed"
    assert _maybe(launching, kinds.PVC, "s1-root") is None
    assert _maybe(launching, kinds.POD, onlinesnap.backup_holder("s1-root")) is None
