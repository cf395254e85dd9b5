"""The release changing under running operations: upgrade, a killed controller, uninstall.

Host copies (the csi-vm-lite class) run as Jobs the controller made and
then only watches, so the controller may go away in the middle: replaced
by `helm upgrade`, or killed without grace. Either way the operation must
end (completed, or rolled back) with the data intact and nothing orphaned.
`helm uninstall` removes what the release made and keeps what the README
says it keeps.

Tests that change the release hold the lock `conftest.install_chart` takes
for their whole length, so no other test's helm call lands in between,
and put the release back with the test values at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from typing import Any

import yaml

from tests.integration.cluster import conftest, disks
from tests.support.cluster import addons, gobuild, kubectl, lab

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"
NS = conftest.RELEASE_NAMESPACE
LITE = addons.LITE.storage_class
CONTROLLER = f"app.kubernetes.io/instance={conftest.RELEASE},app.kubernetes.io/component=controller"


@contextlib.contextmanager
def _release_held(kube: kubectl.Kube) -> Iterator[None]:
    """The helm lock for the whole block; then the release as the test values have it."""
    try:
        with (gobuild.cache_root() / "helm.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
    finally:
        # After the lock is let go: install_chart takes it itself.
        conftest.install_chart(kube)


def _helm_upgrade(kube: kubectl.Kube, *extra: str) -> None:
    """`helm upgrade` with the test values and images, and ``extra`` on top."""
    chart = kubectl.chart_dir()
    tag = lab.project_image_tag(kube.where)
    kube.helm(
        "upgrade", conftest.RELEASE, str(chart), "-n", NS,
        "-f", str(chart / conftest.VALUES),
        "--set", f"image.tag={tag}", "--set", f"node.libvirt.image.tag={tag}",
        *extra, "--wait", "--timeout", "300s",
    )  # fmt: skip


def _vm(name: str) -> Json:
    return {
        "apiVersion": API,
        "kind": "CsiVM",
        "metadata": {"name": name},
        "spec": {
            "running": False,
            "cpus": 1,
            "memory": "128Mi",
            "disks": [{"name": "root", "size": disks.DISK, "storageClassName": LITE}],
        },
    }


def _source_vm(kube: kubectl.Kube, namespace: str) -> str:
    """A stopped VM ``src`` on csi-vm-lite with the test image on its disk; its claim."""
    kube.apply(_vm("src"), namespace=namespace)
    claim = "src-root"
    kube.wait_for(
        f"claim {claim}", lambda: kube.maybe("pvc", claim, namespace=namespace), timeout=120
    )
    disks.import_image(kube, namespace, claim)
    return claim


def _phase(kube: kubectl.Kube, kind: str, name: str, namespace: str) -> str:
    obj = kube.maybe(kind, name, namespace=namespace) or {}
    return str((obj.get("status") or {}).get("phase") or "")


def _settled(kube: kubectl.Kube, kind: str, name: str, namespace: str) -> Json:
    """``kind`` ``name`` once it is Ready or Failed."""

    def check() -> Json | None:
        obj = kube.get(kind, name, namespace=namespace)
        return obj if (obj.get("status") or {}).get("phase") in ("Ready", "Failed") else None

    return dict(
        kube.wait_for(
            f"{kind} {name} Ready or Failed",
            check,
            timeout=600,
            explain=lambda: (
                kube.describe("-n", namespace, kind, name)
                + kube.run("-n", namespace, "get", "pvc,jobs,pods", check=False).stdout
                + kube.run("-n", NS, "get", "pods", check=False).stdout
            ),
        )
    )


def _controller_pods(kube: kubectl.Kube) -> set[str]:
    pods = kube.items("pods", namespace=NS, selector=CONTROLLER)
    return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def _names(kube: kubectl.Kube, kind: str, namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in kube.items(kind, namespace=namespace)}


def test_helm_upgrade_while_a_host_copy_snapshot_runs(chart: kubectl.Kube, namespace: str) -> None:
    kube = chart
    claim = _source_vm(kube, namespace)
    snapshot = {
        "apiVersion": API,
        "kind": "CsiVMSnapshot",
        "metadata": {"name": "snap"},
        "spec": {"vmName": "src"},
    }
    with _release_held(kube):
        before = _controller_pods(kube)
        kube.apply(snapshot, namespace=namespace)
        assert _phase(kube, "csivmsnapshot", "snap", namespace) != "Ready"
        # A changed value changes the controller's pod template: the rollout
        # replaces the controller while the copy is under way.
        _helm_upgrade(kube, "--set", "controller.resyncSeconds=11")
        after = _controller_pods(kube)
        assert after and not after & before, "the upgrade did not replace the controller"
        snap = _settled(kube, "csivmsnapshot", "snap", namespace)

    assert snap["status"]["phase"] == "Ready", snap["status"]
    assert snap["status"]["strategy"] == "host-copy", snap["status"]
    copy = snap["status"]["disks"][0]["objectName"]
    assert disks.read_disk(kube, namespace, copy)[1] == disks.expected_digest()
    assert disks.read_disk(kube, namespace, claim)[1] == disks.expected_digest()
    # One copy, made once: the new controller took up the old one's Job.
    assert _names(kube, "jobs", namespace) == {f"{copy}-copy"}
    assert _names(kube, "pvc", namespace) == {claim, copy}


def _gone(kube: kubectl.Kube, namespace: str) -> str:
    """What of ``namespace``'s storage and work is still there; "" when nothing is."""
    left = kube.run(
        "-n", namespace, "get", "pvc,jobs,pods,volumesnapshots", "-o", "name"
    ).stdout.split()  # fmt: skip
    # kube.get, not kube.items: without a namespace, items puts -A before the
    # verb, which kubectl refuses.
    pvs = [
        p["metadata"]["name"]
        for p in kube.get("pv")["items"]
        if ((p["spec"].get("claimRef") or {}).get("namespace")) == namespace
    ]
    return " ".join(left + [f"pv/{name}" for name in pvs])


def test_controller_killed_mid_clone_orphans_nothing(chart: kubectl.Kube, namespace: str) -> None:
    kube = chart
    claim = _source_vm(kube, namespace)
    clone = {
        "apiVersion": API,
        "kind": "CsiVMClone",
        "metadata": {"name": "clone"},
        "spec": {"sourceVMName": "src", "targetVMName": "cloned"},
    }
    kube.apply(clone, namespace=namespace)
    job = "cloned-root-copy"
    kube.wait_for(
        f"copy Job {job}",
        lambda: kube.maybe("job", job, namespace=namespace),
        timeout=300,
        explain=lambda: kube.describe("-n", namespace, "csivmclone", "clone"),
    )
    killed = _controller_pods(kube)
    assert _phase(kube, "csivmclone", "clone", namespace) != "Ready"
    kube.run(
        "-n", NS, "delete", "pod", "-l", CONTROLLER, "--grace-period=0", "--force", "--wait=false"
    )  # fmt: skip
    done = _settled(kube, "csivmclone", "clone", namespace)
    assert not _controller_pods(kube) & killed

    if done["status"]["phase"] == "Ready":
        assert disks.read_disk(kube, namespace, "cloned-root")[1] == disks.expected_digest()
        # Made once: the next controller found the first one's claim and Job.
        assert _names(kube, "jobs", namespace) == {job}
        assert _names(kube, "pvc", namespace) == {claim, "cloned-root"}
    else:  # rolled back: no target VM; what the clone made goes with it below
        assert not kube.maybe("csivm", "cloned", namespace=namespace), done["status"]
    assert disks.read_disk(kube, namespace, claim)[1] == disks.expected_digest()

    kube.run("-n", namespace, "delete", "csivmclones,csivms,csivmsnapshots", "--all",
             "--wait=true", "--timeout=300s", timeout=320)  # fmt: skip
    kube.wait_for(
        "every claim, Job, Pod, VolumeSnapshot and volume of the namespace gone",
        lambda: not _gone(kube, namespace),
        timeout=300,
        explain=lambda: _gone(kube, namespace),
    )


def _release_objects(kube: kubectl.Kube) -> list[tuple[str, str, str]]:
    """(kind, name, namespace) of every object `helm install` made."""
    out = kube.helm("get", "manifest", conftest.RELEASE, "-n", NS).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", "")) for d in docs]


def _exists(kube: kubectl.Kube, kind: str, name: str, namespace: str) -> bool:
    return kube.maybe(kind.lower(), name, namespace=namespace or None) is not None


def _crds() -> list[str]:
    files = sorted((kubectl.chart_dir() / "crds").glob("*.yaml"))
    return [yaml.safe_load(f.read_text())["metadata"]["name"] for f in files]


def _aggregated(kube: kubectl.Kube, role: str) -> bool:
    rules = kube.get("clusterrole", role).get("rules") or []
    return any("csi-vm.io" in (r.get("apiGroups") or ()) for r in rules)


def test_helm_uninstall_keeps_only_what_the_readme_says(
    chart: kubectl.Kube, namespace: str
) -> None:
    kube = chart
    kube.apply(_vm("kept"), namespace=namespace)
    kube.wait_for("claim kept-root", lambda: kube.maybe("pvc", "kept-root", namespace=namespace))
    assert kube.maybe("storagecapabilityreport", LITE)

    with _release_held(kube):
        made = _release_objects(kube)
        kinds = {kind for kind, _, _ in made}
        assert {
            "Deployment", "DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "Role", "RoleBinding",
        } <= kinds, kinds  # fmt: skip
        kube.helm("uninstall", conftest.RELEASE, "-n", NS, "--wait", "--timeout", "300s")

        # Everything the release made is gone, its pods and its aggregated rules too.
        left = [obj for obj in made if _exists(kube, *obj)]
        assert left == []
        kube.wait_for(
            "the release's pods gone",
            lambda: (
                not kube.items(
                    "pods", namespace=NS, selector=f"app.kubernetes.io/instance={conftest.RELEASE}"
                )
            ),
            timeout=120,
        )
        for role in ("view", "edit", "admin"):
            kube.wait_for(
                f"csi-vm's rules out of {role}", lambda r=role: not _aggregated(kube, r), timeout=60
            )
        # What the README says stays: the CRDs, the custom resources and
        # what they own (the VM's claim), the reports, and the controller's
        # Lease, which the controller made and helm never knew of.
        for crd in _crds():
            state = {c["type"]: c["status"] for c in kube.get("crd", crd)["status"]["conditions"]}
            assert state.get("Established") == "True", crd
        assert kube.maybe("csivm", "kept", namespace=namespace)
        assert kube.maybe("pvc", "kept-root", namespace=namespace)
        assert kube.maybe("storagecapabilityreport", LITE)
        assert kube.maybe("lease", "csi-vm-controller", namespace=NS)

    # Installed again, a new controller takes the Lease that was left behind.
    def leads() -> bool:
        holder = kube.get("lease", "csi-vm-controller", namespace=NS)["spec"].get("holderIdentity")
        pods = kube.items("pods", namespace=NS, selector=CONTROLLER)
        return holder in {p["metadata"]["name"] for p in pods}

    kube.wait_for("the reinstalled controller holding the Lease", leads, timeout=120)
