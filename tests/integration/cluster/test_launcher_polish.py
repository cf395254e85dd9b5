"""A VM in its launcher Pod on the real cluster: its acceleration, and its run directory's end.

The node agent writes ``status.acceleration`` (kvm or tcg, and why) while
the VM runs, from what the launcher Pod found on its node, and removes it
when the VM stops. The VM's run directory on the node
(/var/run/csi-vm/vms/<namespace>_<vm>: libvirt's socket, the console log)
outlives a stop, for the next start, and goes once the VM is deleted and
its Pod is gone. The guest has no operating system, as in
test_launcher_pods.py: a running domain is enough.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from csi_vm.crd import vmpod
from tests.integration.cluster import conftest, disks
from tests.support.cluster import addons, kubectl, layout

Json = dict[str, Any]
VM = "polish"


def _vm(running: bool) -> Json:
    return {
        "apiVersion": "csi-vm.io/v1alpha1",
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


def _status(kube: kubectl.Kube, namespace: str) -> Json:
    return dict(kube.get("csivm", VM, namespace=namespace).get("status") or {})


def _wait_phase(kube: kubectl.Kube, namespace: str, phase: str) -> Json:
    found: Json = kube.wait_for(
        f"CsiVM {VM} {phase}",
        lambda: (st := _status(kube, namespace)) and st.get("phase") == phase and st,
        timeout=420,
        explain=lambda: kube.describe("-n", namespace, "csivm", VM),
    )
    return found


def _notes_commands(kube: kubectl.Kube, namespace: str) -> dict[str, list[str]]:
    """The release's NOTES commands about a VM, for this one: by what they ask for."""
    text = kube.helm("get", "notes", conftest.RELEASE, "-n", conftest.RELEASE_NAMESPACE).stdout
    commands = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("kubectl -n <namespace>"):
            filled = line.replace("<namespace>", namespace).replace("<vm>", VM)
            commands[line] = shlex.split(filled)[1:]
    return commands


def test_acceleration_while_it_runs_and_the_run_directory_after_it_is_gone(
    chart: kubectl.Kube, namespace: str
) -> None:
    run_dir = vmpod.host_dir(namespace, VM)
    chart.apply(_vm(running=True), namespace=namespace)
    _wait_phase(chart, namespace, "Running")
    accel: Json = chart.wait_for(
        "status.acceleration",
        lambda: _status(chart, namespace).get("acceleration"),
        timeout=120,
        explain=lambda: str(_status(chart, namespace)),
    )
    # What the launcher Pod found on the node, in its run directory there.
    found = (run_dir / vmpod.ACCELERATION).read_text().strip()
    assert found.split(":")[0] == accel["mode"], (found, accel)
    assert accel["reason"], accel
    running = next(c for c in _status(chart, namespace)["conditions"] if c["type"] == "Running")
    assert accel["mode"].upper() in running["message"], running
    # What the chart's NOTES tell a user to run about a VM works on this one.
    commands = _notes_commands(chart, namespace)
    assert len(commands) >= 6, commands
    for line, argv in commands.items():
        out = chart.run(*argv).stdout
        if ".status.acceleration" in line:
            assert json.loads(out) == accel, out
        if "console.log" in line:
            # Read again after: a running guest's log only grows.
            assert (run_dir / vmpod.CONSOLE).read_text().startswith(out)

    chart.apply(_vm(running=False), namespace=namespace)
    _wait_phase(chart, namespace, "Stopped")
    chart.wait_for(
        "status.acceleration gone once stopped",
        lambda: "acceleration" not in _status(chart, namespace),
        timeout=120,
        explain=lambda: str(_status(chart, namespace)),
    )
    # Stopped is not gone: the console log stays for a look and the next start.
    assert (run_dir / vmpod.CONSOLE).exists(), sorted(p.name for p in run_dir.iterdir())

    chart.run("-n", namespace, "delete", "csivm", VM, "--wait=true", "--timeout=180s")
    chart.wait_for(
        f"{run_dir} removed by the node agent",
        lambda: not run_dir.exists(),
        timeout=180,
        explain=lambda: chart.run("-n", namespace, "get", "pods", "-o", "wide").stdout,
    )
