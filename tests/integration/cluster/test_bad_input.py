"""Bad input through the real API server, and what csi-vm says about it.

Three layers refuse or explain: the CRDs' OpenAPI schemas (and kubectl's
strict field validation) refuse a malformed object before anything is
stored; the controller refuses what only the cluster can judge, with a
status condition that names the field or the object; and for a claim the
cluster's own provisioner cannot make, the VM's status names the cause the
claim shows only in its Events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.cluster import addons, kubectl

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"
# The local driver's sidecars run under this ServiceAccount (tests/support/cluster/addons.py).
DRIVER_ACCOUNT = f"system:serviceaccount:{addons.NAMESPACE}:csi-driver"


def _vm(name: str, *, storage_class: str = addons.LITE.storage_class, **spec: Any) -> Json:
    body: Json = {
        "running": False,
        "cpus": 1,
        "memory": "128Mi",
        "disks": [{"name": "root", "size": "64Mi", "storageClassName": storage_class}],
    }
    body.update(spec)
    return {"apiVersion": API, "kind": "CsiVM", "metadata": {"name": name}, "spec": body}


def _without_disks() -> Json:
    vm = _vm("bad")
    del vm["spec"]["disks"]
    return vm


def _bad_size() -> Json:
    vm = _vm("bad")
    vm["spec"]["disks"][0]["size"] = "10 gigs"
    return vm


# (object, the field the API server's refusal must name, words of the refusal)
_MALFORMED = [
    pytest.param(_vm("bad", cpus=0), "spec.cpus", "greater than or equal to 1", id="zero-cpus"),
    pytest.param(_bad_size(), "spec.disks[0].size", "should match", id="size-pattern"),
    pytest.param(_without_disks(), "spec.disks", "Required value", id="no-disks"),
    pytest.param(_vm("bad", disks=[]), "spec.disks", "at least 1 items", id="empty-disks"),
    pytest.param(_vm("bad", colour="red"), "spec.colour", "unknown field", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "field", "words"), _MALFORMED)
def test_schema_refuses_a_malformed_csivm(
    chart: kubectl.Kube, namespace: str, body: Json, field: str, words: str
) -> None:
    done = chart.run("-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump(body), check=False)
    assert done.returncode != 0, done.stdout
    assert field in done.stderr and words in done.stderr, done.stderr
    assert not chart.maybe("csivm", "bad", namespace=namespace)


def _condition(kube: kubectl.Kube, kind: str, name: str, namespace: str, ctype: str) -> Json:
    obj = kube.get(kind, name, namespace=namespace)
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == ctype:
            return dict(cond)
    return {}


def _wait_condition(
    kube: kubectl.Kube, kind: str, name: str, namespace: str, ctype: str, reason: str
) -> Json:
    def check() -> Json | None:
        cond = _condition(kube, kind, name, namespace, ctype)
        return cond if cond.get("reason") == reason else None

    return dict(
        kube.wait_for(
            f"{kind} {name}: condition {ctype} with reason {reason}",
            check,
            timeout=180,
            explain=lambda: kube.describe("-n", namespace, kind, name),
        )
    )


def _warnings(kube: kubectl.Kube, namespace: str, name: str) -> list[Json]:
    events = kube.items("events", namespace=namespace)
    return [
        e for e in events if e["involvedObject"].get("name") == name and e.get("type") == "Warning"
    ]


def test_snapshot_of_a_vm_that_does_not_exist(chart: kubectl.Kube, namespace: str) -> None:
    kube = chart
    snap = {
        "apiVersion": API,
        "kind": "CsiVMSnapshot",
        "metadata": {"name": "orphan"},
        "spec": {"vmName": "ghost"},
    }
    kube.apply(snap, namespace=namespace)
    cond = _wait_condition(kube, "csivmsnapshot", "orphan", namespace, "Ready", "VMNotFound")
    assert cond["status"] == "False"
    assert "CsiVM ghost does not exist" in cond["message"], cond
    assert kube.get("csivmsnapshot", "orphan", namespace=namespace)["status"]["phase"] != "Ready"
    assert [e["reason"] for e in _warnings(kube, namespace, "orphan")] == ["VMNotFound"]
    # Nothing is made for it.
    leftovers = kube.run("-n", namespace, "get", "pvc,jobs,volumesnapshots", "-o", "name").stdout
    assert leftovers.strip() == ""


@pytest.fixture
def storage_class_name(chart: kubectl.Kube) -> Iterator[str]:
    """A unique StorageClass name; a class of that name is deleted afterwards if one was made."""
    name = f"e2e-class-{uuid.uuid4().hex[:6]}"
    yield name
    chart.run("delete", "storageclass", name, "--ignore-not-found", check=False)


def _class(name: str, parameters: dict[str, str] | None = None) -> Json:
    # Immediate: the provisioner is asked at once, without a Pod that uses the claim.
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": addons.LITE.driver,
        "parameters": parameters or {},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }


def _bound(kube: kubectl.Kube, vm: str, namespace: str) -> None:
    def check() -> bool:
        cond = _condition(kube, "csivm", vm, namespace, "DisksReady")
        return cond.get("status") == "True"

    kube.wait_for(
        f"{vm}'s disks bound",
        check,
        timeout=180,
        explain=lambda: kube.describe("-n", namespace, "csivm,pvc", vm, f"{vm}-root"),
    )


def test_vm_on_a_storage_class_that_does_not_exist(
    chart: kubectl.Kube, namespace: str, storage_class_name: str
) -> None:
    kube = chart
    kube.apply(_vm("lost", storage_class=storage_class_name), namespace=namespace)
    cond = _wait_condition(kube, "csivm", "lost", namespace, "DisksReady", "StorageClassNotFound")
    assert cond["status"] == "False"
    assert (
        f"StorageClass {storage_class_name} does not exist (spec.disks[0].storageClassName)"
        in cond["message"]
    ), cond
    assert kube.get("csivm", "lost", namespace=namespace)["status"]["phase"] == "Provisioning"
    assert "StorageClassNotFound" in [e["reason"] for e in _warnings(kube, namespace, "lost")]
    # Kubernetes says the same on the claim, where few would look.
    kube.wait_for(
        "the claim's ProvisioningFailed event",
        lambda: [
            e
            for e in _warnings(kube, namespace, "lost-root")
            if e["reason"] == "ProvisioningFailed" and storage_class_name in e["message"]
        ],
        timeout=120,
    )

    # The claim waits for its class: once the class exists, the disk binds.
    kube.apply(_class(storage_class_name))
    _bound(kube, "lost", namespace)
    kube.run("-n", namespace, "delete", "csivm", "lost", "--wait=true")


def _allow_driver_secrets(kube: kubectl.Kube, namespace: str) -> None:
    """Let the provisioner read Secrets in ``namespace``, as a driver that uses them may.

    Without it the provisioner's read is forbidden, not missing: a driver
    that takes secrets is installed with this grant (the external-provisioner's
    RBAC example has it, commented out for drivers that need none).
    """
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "read-secrets"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "driver-reads-secrets"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "read-secrets",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "csi-driver", "namespace": addons.NAMESPACE}
        ],
    }
    kube.apply(role, binding, namespace=namespace)
    kube.wait_for(
        "the driver may read Secrets",
        lambda: kube.run(
            "auth", "can-i", "get", "secrets", "-n", namespace, "--as", DRIVER_ACCOUNT,
            check=False,
        ).stdout.strip() == "yes",
        timeout=60,
    )  # fmt: skip


def test_vm_on_a_class_whose_provisioner_secret_is_missing(
    chart: kubectl.Kube, namespace: str, storage_class_name: str
) -> None:
    kube = chart
    secret = "vm-storage-creds"
    _allow_driver_secrets(kube, namespace)
    refs = {
        "csi.storage.k8s.io/provisioner-secret-name": secret,
        "csi.storage.k8s.io/provisioner-secret-namespace": namespace,
    }
    kube.apply(_class(storage_class_name, refs))
    kube.apply(_vm("locked", storage_class=storage_class_name), namespace=namespace)

    # The cluster: the external-provisioner cannot read the Secret, makes no
    # volume, and says so only in the claim's events.
    failed = kube.wait_for(
        "the provisioner's ProvisioningFailed event",
        lambda: [
            e
            for e in _warnings(kube, namespace, "locked-root")
            if e["reason"] == "ProvisioningFailed"
        ],
        timeout=180,
        explain=lambda: kube.describe("-n", namespace, "pvc", "locked-root"),
    )
    assert f'secrets "{secret}" not found' in failed[0]["message"], failed[0]
    pvc = kube.get("pvc", "locked-root", namespace=namespace)
    assert pvc["status"]["phase"] == "Pending" and not pvc["spec"].get("volumeName")

    # csi-vm: the VM's status names the Secret, read from the class.
    cond = _wait_condition(kube, "csivm", "locked", namespace, "DisksReady", "ProvisionerSecret")
    assert cond["status"] == "False"
    assert f"Secret {namespace}/{secret}" in cond["message"], cond
    assert storage_class_name in cond["message"], cond
    assert kube.get("csivm", "locked", namespace=namespace)["status"]["phase"] == "Provisioning"

    # Once the Secret exists the provisioner makes the volume, and the VM's
    # status clears. (The local driver ignores what the Secret holds.)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret},
            "stringData": {"password": uuid.uuid4().hex},
        },
        namespace=namespace,
    )
    _bound(kube, "locked", namespace)
    cond = _condition(kube, "csivm", "locked", namespace, "DisksReady")
    assert (cond["reason"], cond["message"]) == ("Bound", "root: Bound")
    kube.run("-n", namespace, "delete", "csivm", "locked", "--wait=true")
