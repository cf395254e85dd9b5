"""StorageCapabilityReports from a cluster's declarations and a node's probe (fake API server)."""

from __future__ import annotations

import pytest

from capabilities import model
from csi_vm.controller import context, reconcile_report
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
F = model.Feature


def _reconcile(ctx: context.Context, sc: str) -> dict:  # type: ignore[type-arg]
    reconcile_report.reconcile_class(ctx, ctx.objs.get(kinds.STORAGE_CLASS, sc))
    return ctx.objs.get(kinds.REPORT, sc)


@pytest.fixture
def cluster(fake: fakekube.FakeKube) -> fakekube.FakeKube:
    fake.add(*kubeobjects.typical_cluster())
    return fake


def test_declarations_give_a_report_per_class(
    cluster: fakekube.FakeKube, ctx: context.Context
) -> None:
    report = _reconcile(ctx, "gp3")
    status = report["status"]
    assert report["spec"] == {"storageClassName": "gp3", "provisioner": kubeobjects.EBS}
    assert status["basis"] == "declared"
    assert status["plan"]["vm_snapshot"]["strategy"] == "csi-snapshot"
    assert status["plan"]["disk_expand"]["strategy"] == "csi-expand"
    assert status["conditions"][0]["reason"] == "Declared"
    assert (
        b'csi_vm_storage_feature{basis="declared",feature="snapshot",storage_class="gp3"} 1.0'
        in (ctx.metrics.exposition())
    )


def test_a_class_without_snapshots_plans_host_copies(
    cluster: fakekube.FakeKube, ctx: context.Context
) -> None:
    status = _reconcile(ctx, "nfs-csi")["status"]
    assert status["plan"]["vm_snapshot"]["strategy"] == "host-copy"
    assert "fallback" in status["plan"]["vm_snapshot"]["reason"]
    assert "vm_snapshot" in status["conditions"][0]["message"]


def test_a_probe_result_outranks_declarations(
    cluster: fakekube.FakeKube, ctx: context.Context
) -> None:
    _reconcile(ctx, "gp3")
    probe = model.DriverReport(
        driver=model.DriverInfo(label="gp3", endpoint="unix:///csi/csi.sock", name=kubeobjects.EBS),
        mode="verified",
        features={
            F.SNAPSHOT: model.FeatureResult(
                declared=True, verified=False, evidence="CreateSnapshot failed"
            ),
            F.CLONE: model.FeatureResult(declared=True, verified=True),
        },
    )
    ctx.objs.patch(
        kinds.REPORT, "gp3", {"status": {"probe": model.to_json_dict(probe)}}, subresource="status"
    )
    status = _reconcile(ctx, "gp3")["status"]
    assert status["basis"] == "verified"
    assert status["features"]["snapshot"]["verified"] is False
    assert status["plan"]["vm_snapshot"]["strategy"] == "host-copy"
    assert status["plan"]["vm_clone"]["strategy"] == "csi-clone"


def test_an_unreadable_probe_leaves_the_declarations(
    cluster: fakekube.FakeKube, ctx: context.Context
) -> None:
    _reconcile(ctx, "gp3")
    ctx.objs.patch(
        kinds.REPORT, "gp3", {"status": {"probe": {"nonsense": 1}}}, subresource="status"
    )
    assert _reconcile(ctx, "gp3")["status"]["basis"] == "declared"
