"""A VM whose claim does not bind says why, against the fake API server (a fake, not a cluster).

The claim itself never says it: a StorageClass that does not exist, or a
provisioner Secret the class names, show only in the claim's Events. The
VM's DisksReady condition names the class (and the spec field that names
it) or the Secret, read from the class: the controller reads no Secret.
"""

from __future__ import annotations

from typing import Any

import pytest

from csi_vm.controller import context, reconcile_vm, run
from csi_vm.crd import kinds, status
from tests.support import fakekube, kubeobjects
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS
SECRET_REFS = {
    "csi.storage.k8s.io/provisioner-secret-name": "creds",
    "csi.storage.k8s.io/provisioner-secret-namespace": "storage-secrets",
}


def _pass(ctx: context.Context, name: str = "web") -> dict[str, Any]:
    run.reconcile(ctx, kinds.VM, ctx.objs.get(kinds.VM, name, namespace=NS))
    return ctx.objs.get(kinds.VM, name, namespace=NS)


def _disks_ready(vm: dict[str, Any]) -> dict[str, Any]:
    return status.current(vm, reconcile_vm.DISKS)


def _claims(fake: fakekube.FakeKube) -> Any:
    res = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert res is not None
    return res


def _bind(fake: fakekube.FakeKube, name: str) -> None:
    fake.store.patch(_claims(fake), NS, name, {"status": {"phase": "Bound"}}, subresource="status")


def _warnings(fake: fakekube.FakeKube, name: str) -> list[str]:
    res = fake.store.resource("", "v1", "events")
    assert res is not None
    return [r for kind, r, _ in v.events_about(fake.store.list_objects(res)[0], name)
            if kind == "Warning"]  # fmt: skip


def test_fake_api_missing_class_is_named_with_its_field(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    vm = v.vm("web", sc="fsat")
    vm["spec"]["disks"].insert(0, {"name": "boot", "size": "1Gi", "storageClassName": "fast"})
    fake.add(kubeobjects.storage_class("fast", kubeobjects.CSI_VM_LOCAL), vm)
    for _ in range(2):  # one Event, however often it is reconciled
        got = _pass(ctx)
    cond = _disks_ready(got)
    assert (cond["status"], cond["reason"]) == ("False", "StorageClassNotFound")
    assert "StorageClass fsat does not exist (spec.disks[1].storageClassName)" in cond["message"]
    assert cond["message"].startswith("boot: Pending, root: Pending (")
    assert got["status"]["phase"] == "Provisioning"
    assert _warnings(fake, "web") == ["StorageClassNotFound"]
    # The claim waits for its class, as any claim does: made once the class exists.
    fake.add(kubeobjects.storage_class("fsat", kubeobjects.CSI_VM_LOCAL))
    _bind(fake, "web-boot")
    _bind(fake, "web-root")
    cond = _disks_ready(_pass(ctx))
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "True",
        "Bound",
        "boot: Bound, root: Bound",
    )


def test_fake_api_a_claim_the_user_named_is_not_blamed_on_the_spec(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(kubeobjects.storage_class("fast", kubeobjects.CSI_VM_LOCAL))
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "mine", "namespace": NS},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Block",
            "storageClassName": "gone",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    vm = v.vm("web")
    vm["spec"]["disks"][0]["claimName"] = "mine"
    fake.add(claim, vm)
    message = _disks_ready(_pass(ctx))["message"]
    assert message == "root: Pending (StorageClass gone does not exist: claim mine waits for it)"


@pytest.mark.parametrize(
    ("refs", "named"),
    [
        (SECRET_REFS, "storage-secrets/creds"),
        (
            {
                "csi.storage.k8s.io/provisioner-secret-name": "${pvc.name}-key",
                "csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}",
            },
            f"{NS}/web-root-key",
        ),
    ],
    ids=["fixed", "templated"],
)
def test_fake_api_provisioner_secret_of_a_pending_claim_is_named(
    fake: fakekube.FakeKube, ctx: context.Context, refs: dict[str, str], named: str
) -> None:
    fake.add(
        kubeobjects.storage_class("fast", kubeobjects.CSI_VM_LOCAL, parameters=refs), v.vm("web")
    )
    cond = _disks_ready(_pass(ctx))
    assert (cond["status"], cond["reason"]) == ("False", "ProvisionerSecret")
    assert f"Secret {named} (csi.storage.k8s.io/provisioner-secret-name)" in cond["message"]
    assert "kubectl describe pvc web-root" in cond["message"]
    # The controller names the Secret; it never reads one.
    assert not [r for r in fake.requests if "/secrets" in r.path]
    _bind(fake, "web-root")
    cond = _disks_ready(_pass(ctx))
    assert (cond["status"], cond["message"]) == ("True", "root: Bound")


def test_fake_api_a_claim_waiting_for_its_first_consumer_blames_no_secret(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    sc = kubeobjects.storage_class(
        "fast", kubeobjects.CSI_VM_LOCAL, parameters=SECRET_REFS, binding="WaitForFirstConsumer"
    )
    fake.add(sc, v.vm("web"))
    cond = _disks_ready(_pass(ctx))
    assert (cond["reason"], cond["message"]) == ("Pending", "root: Pending")
    # Once a Pod that uses it is scheduled, the claim is the provisioner's.
    picked = {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-a"}}}
    fake.store.patch(_claims(fake), NS, "web-root", picked)
    cond = _disks_ready(_pass(ctx))
    assert cond["reason"] == "ProvisionerSecret"
    assert "Secret storage-secrets/creds" in cond["message"]
    assert _warnings(fake, "web") == []  # a condition only: it may be on its way
