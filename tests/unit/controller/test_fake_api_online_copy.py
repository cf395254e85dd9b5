"""The controller's side of a block copy into a larger claim under a running guest (fake API).

The node agent is played by a status patch (a fake): its report that it
pivoted the guest. The real agent and guest are
tests/integration/cluster/test_online_ops.py's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from csi_vm import errors
from csi_vm.controller import context, launchpod, run
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS
NODE = "n1"
Obj = dict[str, Any]


@pytest.fixture
def launching(ctx: context.Context) -> context.Context:
    return dataclasses.replace(ctx, launcher=launchpod.Settings(image="libvirt:test"))


def _vm_status(fake: fakekube.FakeKube, status: Obj) -> None:
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, "csivms")
    assert res is not None
    fake.store.patch(res, NS, "web", {"status": status}, subresource="status")


def _pass(ctx: context.Context) -> Obj:
    run.reconcile(ctx, kinds.VM, ctx.objs.get(kinds.VM, "web", namespace=NS))
    return ctx.objs.get(kinds.VM, "web", namespace=NS)


def _maybe(ctx: context.Context, res: Any, name: str) -> Obj | None:
    try:
        return ctx.objs.get(res, name, namespace=NS)
    except errors.NotFound:
        return None


def _spec(ctx: context.Context, **change: Any) -> None:
    ctx.objs.patch(kinds.VM, "web", {"spec": change}, namespace=NS)


def test_a_running_guest_is_copied_into_a_larger_claim_and_keeps_its_holder_until_it_stops(
    fake: fakekube.FakeKube, launching: context.Context
) -> None:
    web = v.vm("web", running=True)
    web["spec"]["nodeName"] = NODE
    fast = kubeobjects.storage_class("fast", kubeobjects.CSI_VM_LOCAL)
    fake.add(fast, v.node(NODE), v.report("fast", v.BASIC), web)
    _pass(launching)
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    fake.store.patch(pvcs, NS, "web-root", {"status": {"phase": "Bound"}}, subresource="status")
    _pass(launching)
    _vm_status(fake, {"phase": "Running", "nodeName": NODE})  # as its agent says
    _spec(launching, disks=[{"name": "root", "size": "2Gi", "storageClassName": "fast"}])

    resize = _pass(launching)["status"]["disks"][0]["resize"]
    # No waiting for a stop: the copy goes on under the running guest.
    assert (resize["phase"], resize["strategy"]) == ("Copying", "block-copy"), resize
    assert resize["targetClaim"] == "web-root-2gi"
    assert "under the running guest" in resize["fallbackReason"]
    assert _maybe(launching, kinds.PVC, "web-root-2gi") is not None
    assert _maybe(launching, kinds.POD, "web-root-2gi-holder") is not None
    assert _maybe(launching, kinds.JOB, "web-root-2gi-copy") is None

    pivoted = {"claimName": "web-root-2gi", "phase": "Pivoted", "reason": "pivoted"}
    _vm_status(fake, {"pivots": {"root": pivoted}})
    vm = _pass(launching)
    assert vm["spec"]["disks"][0]["claimName"] == "web-root-2gi"
    assert _maybe(launching, kinds.PVC, "web-root") is None  # a real cluster keeps it while used
    assert _maybe(launching, kinds.POD, "web-launcher") is not None  # the guest runs on
    assert _maybe(launching, kinds.POD, "web-root-2gi-holder") is not None

    _spec(launching, running=False)
    _pass(launching)  # the launcher Pod goes (at once in the fake)
    _pass(launching)
    assert _maybe(launching, kinds.POD, "web-launcher") is None
    assert _maybe(launching, kinds.POD, "web-root-2gi-holder") is None
