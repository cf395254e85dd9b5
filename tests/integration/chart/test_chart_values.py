"""values.schema.json refuses bad values with a message that names the key."""

from __future__ import annotations

import pathlib

import pytest

from tests.integration.chart import conftest as chart

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ("image:\n  repository: r\n  tag: 1.10\n", "tag"),
        ("controller:\n  replicas: -1\n", "replicas"),
        ("controller:\n  replicaCount: 2\n", "replicaCount"),
        ("surprise: true\n", "surprise"),
        ("node:\n  kubeletDir: var/lib/kubelet\n", "kubeletDir"),
        ("controller:\n  metrics:\n    port: 80\n", "port"),
        ("image:\n  repository: r\n  tag: v1\n  pullPolicy: Sometimes\n", "pullPolicy"),
    ],
    ids=[
        "tag-not-string",
        "negative-replicas",
        "unknown-key",
        "unknown-top-key",
        "relative-kubelet-dir",
        "privileged-port",
        "bad-pull-policy",
    ],
)
def test_bad_values_are_refused(
    helm: pathlib.Path, tmp_path: pathlib.Path, values: str, expected: str
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(values)
    done = chart.run_helm(helm, "template", "release", str(chart.CHART), "-f", str(path))
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert expected in done.stderr, done.stderr


def _template(helm: pathlib.Path, *args: str) -> tuple[int, str]:
    done = chart.run_helm(helm, "template", "release", str(chart.CHART), *args)
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    "extra",
    [(), ("--set", "node.enabled=false"), ("--set", "tests.enabled=false")],
    ids=["defaults", "test-pod-only", "node-pods-only"],
)
def test_no_driver_name_is_refused(helm: pathlib.Path, extra: tuple[str, ...]) -> None:
    # Whatever mounts the driver's node socket needs its name; no made-up default.
    code, err = _template(helm, *extra)
    assert code != 0
    assert "node.csiDriverName is required" in err, err
    assert "kubectl get csidrivers" in err


def test_driver_name_is_not_needed_without_node_pods_or_test_pod(helm: pathlib.Path) -> None:
    code, err = _template(helm, "--set", "node.enabled=false", "--set", "tests.enabled=false")
    assert code == 0, err


@pytest.mark.parametrize(
    "name",
    ["csi driver", "-leading.dash", "x" * 64, "plugins/../../etc"],
    ids=["space", "leading-dash", "too-long", "path"],
)
def test_invalid_driver_names_are_refused(helm: pathlib.Path, name: str) -> None:
    code, err = _template(helm, "--set", f"node.csiDriverName={name}")
    assert code != 0
    assert "values don't meet the specifications of the schema" in err
    assert "csiDriverName" in err, err


@pytest.mark.parametrize("missing", ["controllerName", "nodeName"])
def test_accounts_made_elsewhere_must_be_named(helm: pathlib.Path, missing: str) -> None:
    given = {"controllerName": "ops-controller", "nodeName": "ops-node"}
    del given[missing]
    sets = [f"serviceAccount.{key}={value}" for key, value in given.items()]
    code, err = _template(
        helm,
        "-f",
        str(chart.DEFAULTS),
        "--set",
        ",".join(["serviceAccount.create=false", *sets]),
    )
    assert code != 0
    assert f"serviceAccount.{missing} is required with serviceAccount.create=false" in err, err
