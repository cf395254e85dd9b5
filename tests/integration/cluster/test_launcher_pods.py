"""A running VM in its own launcher Pod on the real cluster (the chart's vmPods).

The CI values turn launcher Pods on. A VM with ``running: true`` gets one
Pod sized from it that holds its claim and runs its qemu through the Pod's
own libvirtd; the node agent starts the guest there. Replacing the node
agent (its Pod deleted, or a `helm upgrade` that rolls the DaemonSet) must
leave the guest running, the same qemu; ``running: false`` powers it off and
the Pod goes. The guest has no operating system (SeaBIOS finds nothing to
boot and keeps trying), which is enough to be a running domain; booting
guests are tests/integration/agent's.
"""

from __future__ import annotations

from typing import Any

from tests.integration.cluster import conftest, disks
from tests.support.cluster import addons, kubectl, layout

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"
VM = "guest"
POD = f"{VM}-launcher"
NODE_PODS = f"app.kubernetes.io/instance={conftest.RELEASE},app.kubernetes.io/component=node"


def _vm(running: bool) -> Json:
    return {
        "apiVersion": API,
        "kind": "CsiVM",
        "metadata": {"name": VM},
        "spec": {
            "running": running,
            "cpus": 1,
            "memory": "128Mi",
            "nodeName": layout.NODE,
            "disks": [
                {"name": "root", "size": disks.DISK, "storageClassName": addons.FULL.storage_class}
            ],
        },
    }


def _explain(kube: kubectl.Kube, namespace: str) -> str:
    return (
        kube.describe("-n", namespace, "csivm", VM)
        + kube.run("-n", namespace, "get", "pvc,pods", "-o", "wide", check=False).stdout
        + kube.run("-n", namespace, "logs", POD, "--tail=30", check=False).stdout
        + kube.logs("-n", conftest.RELEASE_NAMESPACE, "-l", NODE_PODS, "-c", "launcher",
                    "--tail=30")
    )  # fmt: skip


def _phase(kube: kubectl.Kube, namespace: str, want: str) -> Json:
    def check() -> Json | None:
        vm = kube.get("csivm", VM, namespace=namespace)
        return vm if (vm.get("status") or {}).get("phase") == want else None

    return kube.wait_for(
        f"CsiVM {VM} {want}", check, timeout=420, explain=lambda: _explain(kube, namespace)
    )


def _qemu(kube: kubectl.Kube, namespace: str) -> str:
    """The guest's qemu as the launcher Pod's libvirtd has it: its process id."""
    dom = f"{namespace}_{VM}"
    state = kube.run("-n", namespace, "exec", POD, "--", "virsh", "domstate", dom).stdout
    assert state.strip() == "running", state
    pid = kube.run(
        "-n", namespace, "exec", POD, "--", "cat", f"/var/run/libvirt/qemu/{dom}.pid"
    ).stdout.strip()
    assert pid.isdigit(), pid
    return pid


def _agent_pods(kube: kubectl.Kube) -> list[str]:
    pods = kube.items("pods", namespace=conftest.RELEASE_NAMESPACE, selector=NODE_PODS)
    return sorted(p["metadata"]["name"] for p in pods)


def _agents_ready(kube: kubectl.Kube, old: list[str]) -> None:
    def check() -> bool:
        pods = kube.items("pods", namespace=conftest.RELEASE_NAMESPACE, selector=NODE_PODS)
        fresh = [p for p in pods if p["metadata"]["name"] not in old]
        return bool(fresh) and all(
            p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
            for p in fresh
        ) and len(fresh) == len(pods)  # fmt: skip

    kube.wait_for("new node agent pods running", check, timeout=300)


def test_a_vm_runs_in_its_own_pod_and_outlives_its_node_agent(
    chart: kubectl.Kube, namespace: str
) -> None:
    kube = chart
    kube.apply(_vm(running=True), namespace=namespace)
    vm = _phase(kube, namespace, "Running")

    pod = kube.get("pod", POD, namespace=namespace)
    assert pod["spec"]["nodeName"] == layout.NODE
    resources = pod["spec"]["containers"][0]["resources"]
    # 128Mi of guest and the CI values' 192Mi overhead; 100m per vCPU.
    assert resources["requests"] == {"cpu": "100m", "memory": "320Mi"}, resources
    volumes = pod["spec"]["volumes"]
    claims = [
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    ]
    assert claims == [f"{VM}-root"]
    # No holder Pod: the launcher Pod publishes the disk.
    assert [p["metadata"]["name"] for p in kube.items("pods", namespace=namespace)] == [POD]
    running = next(c for c in vm["status"]["conditions"] if c["type"] == "Running")
    # The node's acceleration, as the launcher found it: this machine's KVM
    # leaves a test guest's CPU features out, so TCG.
    assert f"launcher Pod {POD} on {layout.NODE} (TCG" in running["message"], running
    qemu = _qemu(kube, namespace)

    # The node agent goes away and comes back: the guest is the same qemu.
    old = _agent_pods(kube)
    kube.run("-n", conftest.RELEASE_NAMESPACE, "delete", "pod", *old, "--wait=true")
    _agents_ready(kube, old)
    assert _qemu(kube, namespace) == qemu

    # An upgrade that rolls the node DaemonSet: the same again.
    old = _agent_pods(kube)
    try:
        conftest.install_chart(kube, "--set", "node.launcher.resources.requests.memory=97Mi")
        _agents_ready(kube, old)
        assert _qemu(kube, namespace) == qemu
        assert kube.get("csivm", VM, namespace=namespace)["status"]["phase"] == "Running"
    finally:
        conftest.install_chart(kube)

    # Stopped: the guest is powered off (destroyed after the grace period:
    # it has no OS to answer ACPI) and the Pod goes.
    kube.apply(_vm(running=False), namespace=namespace)
    _phase(kube, namespace, "Stopped")
    assert kube.maybe("pod", POD, namespace=namespace) is None
