"""`scripts/cluster down` after a crash leaves nothing behind, and `up` comes back.

Runs last among the cluster tests (the conftest orders it so): it kills
every daemon of the cluster, both nodes' alike, with SIGKILL, as a crashed
machine session would, with pods, volumes and loop devices in use, then
checks that `down` removes all the cluster made (node 2's namespaces, veth
pair and cgroups included), and brings the cluster back for whatever runs
after it.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess

from tests.support.cluster import addons, daemons, kubectl, lab, layout, node2


def _mounts_under(path: pathlib.Path) -> list[str]:
    lines = pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
    return [m for m in (line.split()[4] for line in lines) if m.startswith(f"{path}/")]


def _loops_under(path: pathlib.Path) -> list[str]:
    out = subprocess.run(
        ["losetup", "-n", "-O", "BACK-FILE", "-l"], capture_output=True, text=True, check=False
    ).stdout
    return [line.strip() for line in out.splitlines() if line.strip().startswith(f"{path}/")]


def _chains() -> list[str]:
    found = []
    for table in ("nat", "filter"):
        rules = subprocess.run(
            ["iptables", "-t", table, "-S"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        found += [r for r in rules if r.startswith("-N KUBE-") or r.startswith("-N CNI-")]
    return found


def test_down_after_a_crash_removes_everything_and_up_restores(chart: kubectl.Kube) -> None:
    where = chart.where
    # Something in use: a claim of each driver, published to a Pod.
    ns = "e2e-down"
    chart.run("create", "namespace", ns)
    for config in addons.DRIVERS:
        claim = f"disk-{config.key}"
        chart.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "volumeMode": "Block",
                    "resources": {"requests": {"storage": "16Mi"}},
                    "storageClassName": config.storage_class,
                },
            },
            namespace=ns,
        )
    chart.wait_for(
        "claims bound",
        lambda: (
            all(
                (chart.get("pvc", f"disk-{c.key}", namespace=ns).get("status") or {}).get("phase")
                == "Bound"
                for c in addons.DRIVERS
            )
            or _bind(chart, ns)
        ),
        timeout=300,
    )
    chart.wait_for(
        "the Pod using both claims",
        lambda: chart.get("pod", "user", namespace=ns).get("status", {}).get("phase") == "Running",
        timeout=300,
    )
    assert _loops_under(where.state), "the drivers attached no loop device"

    # Node 2 runs too (its node plugins, and the chart's node pod).
    assert daemons.running(where.node2().daemon("kubelet"), run_dir=where.run)
    for name in lab.all_daemons(where):
        pid = daemons.running(name, run_dir=where.run)
        if pid:
            os.killpg(pid, signal.SIGKILL)
    lab.down(where, say=print)

    assert not _mounts_under(layout.KUBELET_DIR)
    assert not _mounts_under(where.state)
    assert not _loops_under(where.state)
    assert not _loops_under(layout.KUBELET_DIR)
    assert not _chains()
    assert not any(daemons.running(n, run_dir=where.run) for n in lab.all_daemons(where))
    for link in (layout.BRIDGE, layout.VETH_HOST):
        found = subprocess.run(["ip", "link", "show", link], capture_output=True, check=False)
        assert found.returncode != 0, f"link {link} is still there"
    assert not node2.netns_path().exists(), "node 2's network namespace is still there"
    assert not [c for c in node2.cgroup_dirs(where.node2()) if c.exists()]
    for node in where.nodes():
        shims = subprocess.run(
            ["pgrep", "-f", f"containerd-shim.*{node.containerd_socket}"],
            capture_output=True,
            check=False,
        )
        assert shims.returncode != 0, f"container shims of {node.name} survived"
    assert not where.state.exists() and not layout.KUBELET_DIR.exists()
    assert not where.run.exists()

    lab.up(where, say=print)
    for node in (layout.NODE, layout.NODE2):
        assert chart.run("get", "node", node).returncode == 0


def _bind(kube: kubectl.Kube, ns: str) -> bool:
    """A Pod that uses both claims, so WaitForFirstConsumer classes bind them."""
    if kube.maybe("pod", "user", namespace=ns) is None:
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "user"},
                "spec": {
                    "containers": [
                        {
                            "name": "user",
                            "image": "csi-vm.local/pause:1",
                            "imagePullPolicy": "Never",
                            "volumeDevices": [
                                {"name": c.key, "devicePath": f"/dev/{c.key}"}
                                for c in addons.DRIVERS
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": c.key, "persistentVolumeClaim": {"claimName": f"disk-{c.key}"}}
                        for c in addons.DRIVERS
                    ],
                },
            },
            namespace=ns,
        )
    return False
