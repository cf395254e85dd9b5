"""Capability reports of the two driver configurations, made inside the cluster.

Three views must agree with what each configuration really offers: the
`csi-vm capabilities cluster` command run in a Pod under the controller's
ServiceAccount (declarations only, then with a probe of the driver's node
socket), and the StorageCapabilityReports the controller verifies through
the sidecars.
"""

from __future__ import annotations

import json
from typing import Any

from tests.integration.cluster import conftest
from tests.support.cluster import addons, kubectl, lab, layout

FULL, LITE = addons.FULL.storage_class, addons.LITE.storage_class
OPS = ("vm_snapshot", "vm_restore", "vm_clone", "disk_expand")
# What Kubernetes objects alone declare: nothing says a driver can clone.
DECLARED = {
    FULL: {
        "vm_snapshot": "csi-snapshot",
        "vm_restore": "csi-restore",
        "vm_clone": "snapshot-restore",
        "disk_expand": "csi-expand",
    },
    LITE: {
        "vm_snapshot": "host-copy",
        "vm_restore": "host-copy",
        "vm_clone": "host-copy",
        "disk_expand": "copy-to-larger",
    },
}
VERIFIED = {FULL: {**DECLARED[FULL], "vm_clone": "csi-clone"}, LITE: DECLARED[LITE]}


def _in_cluster(kube: kubectl.Kube, *args: str, plugin_dir: str = "") -> dict[str, Any]:
    """`csi-vm capabilities cluster -o json ARGS` in a Pod of the controller's account."""
    name = "capabilities-cluster"
    container: dict[str, Any] = {
        "name": "report",
        "image": f"csi-vm.local/csi-vm:{lab.project_image_tag(kube.where)}",
        "imagePullPolicy": "Never",
        # The report alone on stdout: the CLI's warnings (a retried call) go
        # to stderr, which Pod logs would mix in; shown only on failure.
        "command": [
            "sh",
            "-c",
            'csi-vm capabilities cluster -o json --output-file /tmp/report.json "$@" 2>/tmp/stderr'
            " || { cat /tmp/stderr; exit 1; }; cat /tmp/report.json",
            "report",
            *args,
        ],
    }
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": f"{conftest.RELEASE}-controller",
            "containers": [container],
        },
    }
    if plugin_dir:
        # The driver's plugin directory at the host's path: its socket, and
        # room for the probe's volumes, which the driver publishes in its own
        # container and the probe must see at the same path to read them.
        container["securityContext"] = {"runAsUser": 0}
        container["env"] = [{"name": "TMPDIR", "value": plugin_dir}]
        container["volumeMounts"] = [
            {"name": "plugin", "mountPath": plugin_dir, "mountPropagation": "HostToContainer"}
        ]
        pod["spec"]["volumes"] = [{"name": "plugin", "hostPath": {"path": plugin_dir}}]
    ns = conftest.RELEASE_NAMESPACE
    kube.run("-n", ns, "delete", "pod", name, "--ignore-not-found", "--wait=true")
    kube.apply(pod, namespace=ns)

    def finished() -> str | None:
        phase = kube.get("pod", name, namespace=ns).get("status", {}).get("phase")
        return str(phase) if phase in ("Succeeded", "Failed") else None

    phase = kube.wait_for("the capabilities Pod", finished, timeout=300)
    out = kube.logs("-n", ns, name)
    assert phase == "Succeeded", f"csi-vm capabilities cluster {' '.join(args)} failed:\n{out}"
    kube.run("-n", ns, "delete", "pod", name, "--wait=false")
    return dict(json.loads(out))


def _plans(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        row["driver"]["label"]: {op: row["plan"][op]["strategy"] for op in OPS}
        for row in report["rows"]
        if row["driver"]["label"] in (FULL, LITE)
    }


def test_declared_report_from_inside_the_cluster(chart: kubectl.Kube) -> None:
    assert _plans(_in_cluster(chart)) == DECLARED


def test_a_probe_of_the_node_socket_verifies_what_objects_cannot_declare(
    chart: kubectl.Kube,
) -> None:
    plugin = layout.KUBELET_DIR / "plugins" / addons.FULL.driver
    report = _in_cluster(
        chart, "--probe", f"{addons.FULL.driver}=unix://{plugin}/csi.sock", plugin_dir=str(plugin)
    )
    full = next(r for r in report["rows"] if r["driver"]["label"] == FULL)
    assert full["features"]["clone"]["verified"] is True, full["features"]["clone"]
    assert _plans(report)[FULL] == VERIFIED[FULL]


def test_reports_verified_through_the_sidecars(verified: dict[str, dict[str, str]]) -> None:
    assert {sc: {op: plan[op] for op in OPS} for sc, plan in verified.items()} == VERIFIED
