"""What the controller writes is valid Kubernetes: checked against the API's OpenAPI schemas.

A fake API server accepts anything, so the objects the controller created in
it (PVCs with dataSources, copy Jobs, Events, the Lease) are validated
offline with kubernetes-validate, strict (unknown fields fail), against the
same Kubernetes version as the chart.
"""

from __future__ import annotations

import kubernetes_validate
import pytest

from csi_vm.controller import context, leader, run
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

BUILT_IN = ("persistentvolumeclaims", "jobs", "events", "leases", "pods")


def test_everything_the_controller_creates_validates(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.report("basic", v.BASIC))
    fake.add(v.vm("web"), v.vm("old", sc="basic"), v.vm("files", sc="basic", mode="Filesystem"))
    fake.add(v.snapshot("s1", vm_name="old"), v.clone("c1", source="web", target="web2"))
    fake.add(v.snapshot("s2", vm_name="files"))  # a copy Job that mounts its volumes
    assert leader.Elector(objs=ctx.objs, namespace="csi-vm", name="l", identity="me").try_acquire()
    for res in (kinds.VM, kinds.SNAPSHOT, kinds.CLONE):
        run.Controller(ctx=ctx).sync(res)
    # A verification's probe PVC and its holder Pod (gp3 waits for a consumer).
    fake.add(*kubeobjects.typical_cluster())
    run.Controller(ctx=ctx).sync(kinds.STORAGE_CLASS)
    reports = fake.store.resource(kinds.GROUP, kinds.VERSION, "storagecapabilityreports")
    assert reports is not None
    fake.store.patch(reports, "", "gp3", {"spec": {"verify": True}})
    run.Controller(ctx=ctx).sync(kinds.STORAGE_CLASS)
    checked = 0
    for res in fake.store.resources():
        if res.plural not in BUILT_IN:
            continue
        for obj in fake.store.list_objects(res)[0]:
            kubernetes_validate.validate(obj, v.KUBERNETES, strict=True)
            checked += 1
    assert checked >= 11  # PVCs (plain, with dataSource, Filesystem), Jobs, Events, Lease, Pod
