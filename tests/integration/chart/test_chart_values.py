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
