"""The real two-node cluster and the chart installed on it, for end-to-end tests.

The cluster is started once per session (`scripts/cluster up` may have done
it already; `up` is idempotent), and the chart is installed once with the
test values; tests that upgrade or uninstall it put it back the way they
found it.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import uuid
from collections.abc import Iterator

import pytest

from tests.support.cluster import addons, gobuild, kubectl, lab, layout, pins

RELEASE = "csi-vm"
RELEASE_NAMESPACE = "csi-vm"
VALUES = "ci/local-cluster-values.yaml"

_HERE = os.path.dirname(__file__)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The crash-and-down test takes the cluster away and brings it back:
    # after every other test that needs it.
    last = [i for i in items if i.path.name == "test_down_and_up.py"]
    items[:] = [i for i in items if i not in last] + last
    for item in items:
        if str(item.path).startswith(_HERE):
            item.add_marker(pytest.mark.cluster)
            # Pods, sidecars and Jobs on a loaded 2-core machine; the first
            # test also waits for `up` to refresh the project's image.
            item.add_marker(pytest.mark.timeout(1200))


@pytest.fixture(scope="session")
def cluster() -> layout.Layout:
    if os.geteuid() != 0:
        pytest.fail("the cluster tests start containerd and a kubelet: run them as root")
    if not all(gobuild.built(p) for p in pins.ALL):
        pytest.fail("the test cluster is not built: run scripts/cluster up (scripts/check does)")
    return lab.up(say=lambda text: print(f"cluster: {text}", flush=True))


@pytest.fixture(scope="session")
def kube(cluster: layout.Layout) -> kubectl.Kube:
    return kubectl.Kube(cluster)


def install_chart(kube: kubectl.Kube, *extra: str) -> None:
    """helm upgrade --install with the test values and the images `up` imported."""
    chart = kubectl.chart_dir()
    tag = lab.project_image_tag(kube.where)
    extra = ("--set", f"image.tag={tag}", "--set", f"node.libvirt.image.tag={tag}", *extra)
    # One helm operation on the release at a time, across test processes.
    with (gobuild.cache_root() / "helm.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _helm_install(kube, chart, extra)


def _helm_install(kube: kubectl.Kube, chart: pathlib.Path, extra: tuple[str, ...]) -> None:
    # As the README's upgrade steps say: helm installs crds/ only the first
    # time, so a newer chart's CRDs are applied before the upgrade.
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(chart / "crds"))
    kube.helm(
        "upgrade",
        "--install",
        RELEASE,
        str(chart),
        "-n",
        RELEASE_NAMESPACE,
        "--create-namespace",
        "-f",
        str(chart / VALUES),
        "--wait",
        "--timeout",
        "300s",
        *extra,
    )


@pytest.fixture(scope="session")
def chart(kube: kubectl.Kube) -> kubectl.Kube:
    """The chart installed with the test values (kept for the whole session)."""
    install_chart(kube)
    return kube


@pytest.fixture
def namespace(chart: kubectl.Kube) -> Iterator[str]:
    """A namespace of the test's own, deleted (and waited for) afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    chart.run("create", "namespace", name)
    yield name
    chart.run("delete", "namespace", name, "--wait=true", "--timeout=300s", check=False)


@pytest.fixture(scope="session")
def verified(chart: kubectl.Kube) -> dict[str, dict[str, str]]:
    """Both classes verified in the cluster (spec.verify): their plans, by operation.

    Kubernetes objects cannot declare every feature (clone, for one): only
    a verified report plans a CSI clone.
    """
    plans = {}
    for config in addons.DRIVERS:
        name = config.storage_class
        # Off, then on: a new generation, so this session's chart verifies
        # afresh instead of keeping a verdict an earlier image reached.
        for verify in ("false", "true"):
            chart.run(
                "patch",
                "storagecapabilityreport",
                name,
                "--type=merge",
                "-p",
                f'{{"spec":{{"verify":{verify}}}}}',
            )

        def done(name: str = name) -> dict[str, object] | None:
            report = chart.get("storagecapabilityreport", name)
            status = report.get("status") or {}
            verification = status.get("verification") or {}
            current = verification.get("generation") == report["metadata"]["generation"]
            finished = current and verification.get("phase") == "Done"
            return status if finished and status.get("basis") == "verified" else None

        status = chart.wait_for(
            f"verification of {name}",
            done,
            timeout=600,
            explain=lambda: chart.run("get", "pvc,pods,volumesnapshots", "-A", check=False).stdout,
        )
        plans[name] = {op: str(p["strategy"]) for op, p in status["plan"].items()}
    return plans
