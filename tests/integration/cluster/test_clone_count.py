"""A CsiVMClone fan-out (count and nameTemplate) on the real cluster, both driver configurations.

Three clones of a stopped VM whose disk holds a known image: each must be a
CsiVM of the template's name on a claim of its own whose bytes read as the
source's, the status must list each clone and the strategy taken, a
template that gives no valid VM names must be refused once in the status,
and deleting the CsiVMClone must take what the clones were made with (the
shared snapshot, the copy Jobs) and leave the VMs it made and their disks
(as the README says: deleting a restore or clone leaves the VM it made).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.cluster import disks
from tests.support.cluster import addons, kubectl

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"
NAMES = ("lab-1", "lab-2", "lab-3")
#: What each configuration's clone may take: the full one a native rung
#: (csi-clone once the class is verified, snapshot-restore on its
#: declarations alone), the lite one only the host copy.
STRATEGIES = {addons.FULL.key: {"csi-clone", "snapshot-restore"}, addons.LITE.key: {"host-copy"}}


def _vm(name: str, storage_class: str) -> Json:
    return {
        "apiVersion": API,
        "kind": "CsiVM",
        "metadata": {"name": name},
        "spec": {
            "running": False,
            "cpus": 1,
            "memory": "128Mi",
            "disks": [{"name": "root", "size": disks.DISK, "storageClassName": storage_class}],
        },
    }


def _clone(name: str, template: str, count: int = len(NAMES)) -> Json:
    return {
        "apiVersion": API,
        "kind": "CsiVMClone",
        "metadata": {"name": name},
        "spec": {"sourceVMName": "src", "count": count, "nameTemplate": template},
    }


def _ended(kube: kubectl.Kube, name: str, namespace: str) -> Json:
    """The clone once its phase is no longer Pending (or empty)."""

    def check() -> Json | None:
        obj = kube.get("csivmclone", name, namespace=namespace)
        phase = (obj.get("status") or {}).get("phase")
        return obj if phase not in (None, "", "Pending") else None

    return kube.wait_for(
        f"CsiVMClone {name} ended",
        check,
        timeout=420,
        explain=lambda: (
            kube.describe("-n", namespace, "csivmclone", name)
            + kube.run(
                "-n", namespace, "get", "csivms,pvc,jobs,pods,volumesnapshots", check=False
            ).stdout
        ),
    )


@pytest.fixture(params=addons.DRIVERS, ids=lambda d: d.key)
def config(request: pytest.FixtureRequest) -> addons.DriverConfiguration:
    return request.param  # type: ignore[no-any-return]


def test_fan_out_makes_each_named_clone_with_the_sources_bytes(
    chart: kubectl.Kube, namespace: str, config: addons.DriverConfiguration
) -> None:
    kube = chart
    kube.apply(_vm("src", config.storage_class), namespace=namespace)
    kube.wait_for(
        "claim src-root", lambda: kube.maybe("pvc", "src-root", namespace=namespace), timeout=120
    )
    disks.import_image(kube, namespace, "src-root")
    source = disks.read_disk(kube, namespace, "src-root")
    assert source == (disks.DISK_MIB * disks.MiB, disks.expected_digest())

    kube.apply(_clone("lab", "lab-{i}"), namespace=namespace)
    done = _ended(kube, "lab", namespace)
    state = done["status"]
    assert state["phase"] == "Ready", state
    assert [(c["name"], c["phase"]) for c in state["clones"]] == [(n, "Ready") for n in NAMES]
    assert (state["done"], state["failed"]) == (3, 0)
    assert state["message"] == "3 of 3 clones made"
    [disk] = state["disks"]
    assert disk["name"] == "root"
    assert disk["strategy"] in STRATEGIES[config.key], state
    # Only the first rung is no fallback: snapshot-restore is the full
    # class's fallback until a verification shows its clone works.
    assert disk["fallback"] is (disk["strategy"] != "csi-clone"), state
    assert disk["native"] is (config is addons.FULL), state

    for name in NAMES:
        vm = kube.get("csivm", name, namespace=namespace)
        [vm_disk] = vm["spec"]["disks"]
        assert vm_disk["claimName"] == f"{name}-root"
        assert vm["spec"]["running"] is False
        assert disks.read_disk(kube, namespace, f"{name}-root") == source, name
    # What the clones were made with stays while the CsiVMClone does (a claim
    # of a WaitForFirstConsumer class is only made from its snapshot when
    # first used): a snapshot-restore fan-out's one snapshot per disk, shared
    # by every clone, or a host copy's Job per clone.
    made_with = {
        "volumesnapshots": 1 if disk["strategy"] == "snapshot-restore" else 0,
        "jobs": len(NAMES) if disk["strategy"] == "host-copy" else 0,
    }
    assert {kind: len(kube.items(kind, namespace=namespace)) for kind in made_with} == made_with

    # Deleted, the CsiVMClone takes those along and leaves the VMs it made
    # with their disks (the claims passed to each VM).
    kube.run("-n", namespace, "delete", "csivmclone", "lab", "--cascade=foreground", "--wait=true")
    for kind in made_with:
        assert not kube.items(kind, namespace=namespace), f"{kind} left after the clone's deletion"
    for name in NAMES:
        assert kube.maybe("csivm", name, namespace=namespace), f"CsiVM {name} went with the clone"
        claim = kube.get("pvc", f"{name}-root", namespace=namespace)
        owners = claim["metadata"].get("ownerReferences") or []
        assert [(o["kind"], o["name"]) for o in owners] == [("CsiVM", name)], owners


def test_a_template_that_gives_no_vm_names_is_refused_once(
    chart: kubectl.Kube, namespace: str
) -> None:
    kube = chart
    kube.apply(_vm("src", addons.LITE.storage_class), namespace=namespace)
    # The CRD's pattern lets this through ({i} is there); the names it gives,
    # Lab-1 ..., are not valid object names, which only the controller checks.
    kube.apply(_clone("bad", "Lab-{i}"), namespace=namespace)
    state = _ended(kube, "bad", namespace)["status"]
    assert state["phase"] == "Rejected", state
    assert "nameTemplate 'Lab-{i}'" in state["message"], state
    [ready] = [c for c in state["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "Rejected")
    warnings = [
        e
        for e in kube.items("events", namespace=namespace)
        if e["involvedObject"].get("name") == "bad" and e["type"] == "Warning"
    ]
    assert [(e["reason"], e.get("count", 1)) for e in warnings] == [("Rejected", 1)], warnings
    # Nothing was made for it: only the source's VM and claim exist.
    assert [v["metadata"]["name"] for v in kube.items("csivms", namespace=namespace)] == ["src"]
    assert [c["metadata"]["name"] for c in kube.items("pvc", namespace=namespace)] == ["src-root"]
