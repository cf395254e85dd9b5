"""The chart's NOTES: how to check a VM, with and without launcher Pods.

Rendered by the real helm (an install's dry run prints them). Each command
must name what the code really makes: the launcher Pod's name, the node
pods' labels and container, the console log's path, and status fields the
CsiVM schema has. tests/integration/cluster/test_launcher_polish.py runs
them against a real VM.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from csi_vm.crd import vmpod
from tests.integration.chart import conftest as chart

VM_PODS = ("--set", "vmPods.enabled=true")
NODE_LIBVIRT = ("--set", "vmPods.enabled=false")


def notes(helm: pathlib.Path, *extra: str) -> str:
    done = chart.run_helm(
        helm, "install", "release", str(chart.CHART), "--dry-run=client", "--namespace",
        "csi-vm", "-f", str(chart.DEFAULTS), *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:\n", 1)[1]


def _vm_schema() -> dict:  # type: ignore[type-arg]
    crd = next(c for c in chart.crds() if c["spec"]["names"]["kind"] == "CsiVM")
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("extra", [NODE_LIBVIRT, VM_PODS], ids=["node-libvirt", "vm-pods"])
def test_every_status_field_named_is_in_the_schema(helm: pathlib.Path, extra: tuple[str]) -> None:
    text = notes(helm, *extra)
    fields = set(re.findall(r"\.status\.(\w+)", text))
    assert fields, text
    known = set(_vm_schema()["properties"]["status"]["properties"])
    assert fields <= known, fields - known


def test_with_launcher_pods_the_pod_acceleration_and_console(helm: pathlib.Path) -> None:
    text = notes(helm, *VM_PODS)
    assert f"get pod {vmpod.pod_name('<vm>')} -o wide" in text
    assert "jsonpath='{.status.acceleration}'" in text
    assert f"-- cat {vmpod.RUN_DIR / vmpod.CONSOLE}" in text


def test_without_launcher_pods_the_node_pod_and_its_console(helm: pathlib.Path) -> None:
    text = notes(helm, *NODE_LIBVIRT)
    assert "-launcher" not in text
    objects = chart.render(helm, chart.DEFAULTS, *NODE_LIBVIRT)
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    labels = ds["spec"]["template"]["metadata"]["labels"]
    node_pods = next(m for m in re.findall(r"-l (\S+)", text) if "component" in m)
    pairs = dict(pair.split("=", 1) for pair in node_pods.split(","))
    assert pairs.items() <= labels.items(), (pairs, labels)
    assert pairs["app.kubernetes.io/component"] == "node"
    containers = {c["name"]: c for c in ds["spec"]["template"]["spec"]["containers"]}
    mounts = {m["mountPath"] for m in containers["libvirt"]["volumeMounts"]}
    # The agent's default state directory, where qemu writes <domain>.console.log.
    assert "/var/lib/csi-vm" in mounts
    assert (
        f"-c libvirt -- cat /var/lib/csi-vm/{vmpod.domain_name('<namespace>', '<vm>')}.console.log"
        in text
    )
