"""`helm lint` and `helm template` with the real helm, and every object checked offline.

Rendered objects are validated against the OpenAPI schemas of Kubernetes
KUBERNETES (strict: unknown fields fail) with kubernetes-validate; example
custom resources against their CRD's openAPIV3Schema with jsonschema.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.integration.chart import conftest as chart
from tests.support import driverproc, vmobjects

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KUBERNETES = vmobjects.KUBERNETES
VALUES = list(chart.VALUES.items())
IDS = list(chart.VALUES)


@pytest.mark.parametrize(("name", "values"), VALUES, ids=IDS)
def test_lint_passes(helm: pathlib.Path, name: str, values: pathlib.Path | None) -> None:
    args = ["lint", "--strict", str(chart.CHART)] + (["-f", str(values)] if values else [])
    done = chart.run_helm(helm, *args)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("name", "values"), VALUES, ids=IDS)
def test_every_object_validates_against_kubernetes(
    helm: pathlib.Path, name: str, values: pathlib.Path | None
) -> None:
    objects = chart.render(helm, values)
    assert objects
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{where}: {err.message} at {list(err.path)}")


@pytest.mark.parametrize(("name", "values"), VALUES, ids=IDS)
def test_standard_labels_everywhere(
    helm: pathlib.Path, name: str, values: pathlib.Path | None
) -> None:
    for obj in chart.render(helm, values):
        if obj["kind"] == "CustomResourceDefinition":
            continue  # crds/ is not templated: it carries only part-of
        labels = obj["metadata"].get("labels") or {}
        for key in ("name", "instance", "version", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, f"{obj['kind']} {obj['metadata']['name']}"


@pytest.mark.parametrize(("name", "values"), VALUES, ids=IDS)
def test_containers_have_limits_and_only_libvirt_is_privileged(
    helm: pathlib.Path, name: str, values: pathlib.Path | None
) -> None:
    for obj in chart.render(helm, values):
        for container in _containers(obj):
            resources = container.get("resources") or {}
            assert resources.get("requests") and resources.get("limits"), container["name"]
            privileged = (container.get("securityContext") or {}).get("privileged", False)
            assert privileged == (container["name"] == "libvirt"), container["name"]


def test_node_mounts_the_kubelet_dirs_of_the_values(helm: pathlib.Path) -> None:
    objects = chart.render(helm, chart.VALUES["custom-kubelet-values"])
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    paths = {
        v["hostPath"]["path"] for v in ds["spec"]["template"]["spec"]["volumes"] if "hostPath" in v
    }
    assert paths == {
        "/dev",
        "/var/lib/k0s/kubelet/pods",
        "/var/lib/k0s/kubelet/plugins/kubernetes.io/csi",
        "/var/lib/k0s/kubelet/plugins/rbd.csi.ceph.com",
        # The launcher Pods' run directories (vmPods, on by default).
        "/var/run/csi-vm/vms",
    }


def test_controller_runs_the_controller_with_leader_election(helm: pathlib.Path) -> None:
    deploy = next(o for o in chart.render(helm, chart.DEFAULTS) if o["kind"] == "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["controller", "run"]
    assert "--lease-name=csi-vm-controller" in container["args"]
    assert deploy["spec"]["replicas"] == 2


def test_helm_test_hook_probes_declared_only(helm: pathlib.Path) -> None:
    hooks = [
        o
        for o in chart.render(helm, chart.DEFAULTS)
        if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    ]
    assert len(hooks) == 1
    args = hooks[0]["spec"]["containers"][0]["args"]
    assert args[:3] == ["capabilities", "probe", "--declared-only"]


@pytest.mark.parametrize(
    "example", sorted((chart.CHART / "examples").glob("*.yaml")), ids=lambda p: p.stem
)
def test_example_validates_against_its_crd(example: pathlib.Path) -> None:
    obj = yaml.safe_load(example.read_text())
    schema = _schema_of(obj["kind"])
    jsonschema.validate(obj, schema)


def test_crd_schema_refuses_a_bad_example() -> None:
    obj = yaml.safe_load((chart.CHART / "examples" / "csivm.yaml").read_text())
    obj["spec"]["disks"][0]["size"] = "ten gigs"
    with pytest.raises(jsonschema.ValidationError, match="does not match"):
        jsonschema.validate(obj, _schema_of("CsiVM"))


def _schema_of(kind: str) -> dict[str, Any]:
    crd = next(c for c in chart.crds() if c["spec"]["names"]["kind"] == kind)
    return _openapi_to_jsonschema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI's ``nullable: true`` is JSON Schema's extra "null" type."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    return copy.deepcopy(out)


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or (spec if obj["kind"] == "Pod" else {})
    return list(pod.get("containers") or ())


def _pod_specs(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The node DaemonSet's pod spec and the `helm test` Pod's spec."""
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    hook = next(
        o for o in objects if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
    )
    return ds["spec"]["template"]["spec"], hook["spec"]


def test_helm_test_pod_schedules_and_pulls_like_the_node_pods(
    helm: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    extra = tmp_path / "affinity.yaml"
    extra.write_text(yaml.safe_dump({"node": {"affinity": affinity}}))
    objects = chart.render(helm, chart.VALUES["custom-kubelet-values"], "-f", str(extra))
    node, test = _pod_specs(objects)
    deploy = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert test["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert test["imagePullSecrets"] == node["imagePullSecrets"] == deploy["imagePullSecrets"]
    assert test["nodeSelector"] == node["nodeSelector"] == {"csi-vm.io/vm-host": "true"}
    assert test["tolerations"] == node["tolerations"]
    assert test["tolerations"][0]["key"] == "dedicated"
    assert test["affinity"] == node["affinity"] == affinity


def test_controller_takes_its_affinity(helm: pathlib.Path) -> None:
    affinity: dict[str, Any] = {
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}
    }
    objects = chart.render(
        helm, chart.DEFAULTS, "--set-json", f"controller.affinity={json.dumps(affinity)}"
    )
    deploy = next(o for o in objects if o["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["affinity"] == affinity
    node, _ = _pod_specs(objects)
    assert "affinity" not in node


@pytest.mark.parametrize(
    ("name", "values"),
    [(n, v) for n, v in VALUES if n != "minimal-values"],
    ids=[n for n in IDS if n != "minimal-values"],
)
def test_driver_directory_is_mounted_never_created(
    helm: pathlib.Path, name: str, values: pathlib.Path
) -> None:
    # A wrong name must not leave a directory on every node: the driver makes it.
    for spec in _pod_specs(chart.render(helm, values)):
        plugin = next(v for v in spec["volumes"] if v["name"] == "plugin")
        assert plugin["hostPath"]["type"] == "Directory"
        assert plugin["hostPath"]["path"].endswith("/plugins/" + _driver(values))


def _driver(values: pathlib.Path) -> str:
    return str(yaml.safe_load(values.read_text())["node"]["csiDriverName"])


def _csi_vm(
    args: list[str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert args[0] == "csi-vm", args
    return subprocess.run(
        [sys.executable, "-m", "csi_vm", *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_node_agent_command_line_parses(helm: pathlib.Path) -> None:
    # The chart and the CLI change apart: a flag renamed in one breaks the
    # other only on a cluster. `--help` stops at an unknown command or option.
    node, _ = _pod_specs(chart.render(helm, chart.DEFAULTS))
    launcher = next(c for c in node["containers"] if c["name"] == "launcher")
    done = _csi_vm([*launcher["command"], "--help"])
    assert done.returncode == 0, done.stderr


def test_readiness_and_helm_test_probes_follow_the_driver(
    helm: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The chart's probe command lines, run as written against a real driver:
    they pass while it answers and fail once it is gone."""
    node, test = _pod_specs(chart.render(helm, chart.DEFAULTS))
    launcher = next(c for c in node["containers"] if c["name"] == "launcher")
    lines = {
        "readiness": list(launcher["readinessProbe"]["exec"]["command"]),
        "helm test": ["csi-vm", *test["containers"][0]["args"]],
    }
    driver = driverproc.start_driver(tmp_path / "driver")
    env = {**os.environ, "CSI_VM_STATE_DIR": str(tmp_path / "state")}

    def at_driver(line: list[str]) -> list[str]:
        # The pods see the node plugin's socket at /csi/csi.sock.
        return [driver.endpoint if a == "unix:///csi/csi.sock" else a for a in line]

    try:
        for what, line in lines.items():
            assert "unix:///csi/csi.sock" in line, (what, line)
            done = _csi_vm(at_driver(line), env=env)
            assert done.returncode == 0, f"{what}: {done.stderr}"
    finally:
        driver.stop()
    for what, line in lines.items():
        done = _csi_vm(at_driver(line), env=env)
        assert done.returncode == 4, f"{what}: {done.returncode} {done.stderr}"


def test_the_controller_hands_the_pull_secrets_to_what_it_makes(helm: pathlib.Path) -> None:
    objects = chart.render(helm, chart.VALUES["custom-kubelet-values"])
    deploy = next(o for o in objects if o["kind"] == "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--image-pull-secret")] == [
        "--image-pull-secret=registry-credentials"
    ]
    defaults = next(o for o in chart.render(helm, chart.DEFAULTS) if o["kind"] == "Deployment")
    args = defaults["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [a for a in args if a.startswith("--image-pull-secret")]
