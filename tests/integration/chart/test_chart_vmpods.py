"""The chart's vmPods: the controller's launcher settings and the agent's socket directory."""

from __future__ import annotations

import pathlib
from typing import Any

from csi_vm.crd import vmpod
from tests.integration.chart import conftest as chart

Json = dict[str, Any]


def _containers(objects: list[Json], kind: str) -> dict[str, Json]:
    obj = next(o for o in objects if o["kind"] == kind)
    return {c["name"]: c for c in obj["spec"]["template"]["spec"]["containers"]}


def _volumes(objects: list[Json]) -> dict[str, Json]:
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    return {v["name"]: v for v in ds["spec"]["template"]["spec"]["volumes"]}


def test_vm_pods_give_the_controller_its_settings_and_the_agent_the_sockets(
    helm: pathlib.Path,
) -> None:
    objects = chart.render(
        helm, chart.DEFAULTS, "--set", "vmPods.enabled=true", "--set", "vmPods.acceleration=tcg"
    )

    args = _containers(objects, "Deployment")["controller"]["args"]
    # The libvirt image runs the launcher Pods.
    assert "--launcher-image=ghcr.io/csi-vm/libvirt:9.0.0" in args
    assert {"--launcher-acceleration=tcg", "--launcher-overhead=256Mi"} <= set(args)
    agent = _containers(objects, "DaemonSet")["launcher"]
    # The directory the controller gives each launcher Pod, at the node's path.
    assert f"--launcher-dir={vmpod.HOST_DIR}" in agent["command"]
    assert _volumes(objects)["vm-run"]["hostPath"]["path"] == str(vmpod.HOST_DIR)
    mounts = {m["name"]: m["mountPath"] for m in agent["volumeMounts"]}
    assert mounts["vm-run"] == str(vmpod.HOST_DIR)


def test_vm_pods_are_on_by_default_and_can_be_turned_off(helm: pathlib.Path) -> None:
    on = chart.render(helm, chart.DEFAULTS)
    args = _containers(on, "Deployment")["controller"]["args"]
    assert "--launcher-image=ghcr.io/csi-vm/libvirt:9.0.0" in args
    assert "vm-run" in _volumes(on)

    off = chart.render(helm, chart.DEFAULTS, "--set", "vmPods.enabled=false")
    args = _containers(off, "Deployment")["controller"]["args"]
    assert not [a for a in args if a.startswith("--launcher-")]
    assert "vm-run" not in _volumes(off)


def test_vm_pods_refuse_an_unknown_acceleration(helm: pathlib.Path) -> None:
    done = chart.run_helm(
        helm, "template", "release", str(chart.CHART), "-f", str(chart.DEFAULTS),
        "--set", "vmPods.acceleration=fast",
    )  # fmt: skip
    assert done.returncode != 0
    assert "acceleration" in done.stderr, done.stderr
