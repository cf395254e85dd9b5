"""`capabilities cluster` against a local fake of the Kubernetes API server.

No API server can run on the test machines, so every cluster here is the fake
from `tests.support.fakekube`, serving realistic storage objects: EBS (gp3,
snapshots, zone topology), NFS (no expansion), a non-CSI local-path
provisioner and csi-vm's local driver. Merging with socket probes runs the
real local driver (root, real gRPC socket).
"""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from capabilities import cluster, cluster_inventory, model, probe, schema
from capabilities.render import json_doc
from csi_vm import errors
from csi_vm.cli import cluster_cmd
from csi_vm.csi import retry
from csi_vm.kube import api as kube_api
from tests.support import driverproc, fakekube, kubeobjects

pytestmark = pytest.mark.fake

F = model.Feature
R = model.FeatureResult
K = kubeobjects
QUICK = retry.RetryPolicy(attempts=2, first_delay=0.01, max_delay=0.02)
CLASSES = ["csi-vm-local", "gp3", "local-path", "nfs-csi"]


def fixed_clock() -> datetime.datetime:
    return datetime.datetime(2026, 1, 5, 9, 30, tzinfo=datetime.UTC)


@pytest.fixture
def fake() -> Iterator[fakekube.FakeKube]:
    with fakekube.running() as server:
        server.add(*K.typical_cluster())
        yield server


@pytest.fixture
def kubeconfig(fake: fakekube.FakeKube, tmp_path: pathlib.Path) -> pathlib.Path:
    return fake.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def options(tmp_path: pathlib.Path) -> probe.Options:
    return probe.Options(journal_dir=tmp_path / "journals", budget=60.0)


def _run(
    kubeconfig: pathlib.Path,
    options: probe.Options,
    probes: dict[str, probe.Target] | None = None,
) -> model.MatrixReport:
    with kube_api.connect(kubeconfig_file=kubeconfig, policy=QUICK) as api:
        return cluster.run(api, probes=probes or {}, options=options, clock=fixed_clock)


def _rows(report: model.MatrixReport) -> dict[str, model.DriverReport]:
    return {r.driver.label: r for r in report.rows}


# -- rows and declared features -----------------------------------------------


def test_fake_api_one_row_per_storage_class(
    kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    report = _run(kubeconfig, options)
    assert report.kind == "cluster"
    assert report.generated_at == "2026-01-05T09:30:00+00:00"
    assert [r.driver.label for r in report.rows] == CLASSES
    for row in report.rows:
        assert row.mode == "cluster"
        assert row.error is None
        assert row.driver.endpoint == ""  # nothing was probed
        assert set(row.features) == set(F)
    assert _rows(report)["gp3"].driver.name == K.EBS


DECLARED_BY_CLUSTER = [
    ("gp3", F.SNAPSHOT, True, "VolumeSnapshotClass ebs-csi-snapclass (default) names"),
    ("gp3", F.RESTORE_FROM_SNAPSHOT, True, "ebs-csi-snapclass"),
    ("gp3", F.EXPANSION_CONTROLLER, True, "StorageClass gp3: allowVolumeExpansion: true"),
    ("gp3", F.TOPOLOGY, True, f"topologyKeys {K.EBS_ZONE_KEY}"),
    ("gp3", F.CAPACITY, False, f"CSIDriver {K.EBS}: storageCapacity: false"),
    ("nfs-csi", F.SNAPSHOT, False, f"no VolumeSnapshotClass names {K.NFS}"),
    ("nfs-csi", F.EXPANSION_CONTROLLER, False, "does not set allowVolumeExpansion"),
    ("nfs-csi", F.TOPOLOGY, False, f"no topologyKeys for {K.NFS}"),
    ("local-path", F.TOPOLOGY, True, "volumeBindingMode WaitForFirstConsumer"),
    ("local-path", F.CAPACITY, None, f"no CSIDriver object {K.LOCAL_PATH}"),
    ("csi-vm-local", F.CAPACITY, True, "storageCapacity: true"),
    ("csi-vm-local", F.TOPOLOGY, True, K.CSI_VM_TOPOLOGY_KEY),
]


@pytest.mark.parametrize(
    ("sc", "feature", "declared", "evidence"),
    DECLARED_BY_CLUSTER,
    ids=[f"{sc}-{feature}" for sc, feature, _, _ in DECLARED_BY_CLUSTER],
)
def test_fake_api_features_declared_from_cluster_objects(
    kubeconfig: pathlib.Path,
    options: probe.Options,
    sc: str,
    feature: model.Feature,
    declared: bool | None,
    evidence: str,
) -> None:
    result = _rows(_run(kubeconfig, options))[sc].features[feature]
    assert result.declared is declared
    assert result.verified is None  # the cluster declares; only a probe verifies
    assert evidence in result.evidence


@pytest.mark.parametrize(
    "feature",
    [F.BLOCK, F.FILESYSTEM, F.CLONE, F.MULTI_NODE_SHARED, F.EXPANSION_NODE, F.VOLUME_STATS],
    ids=str,
)
def test_fake_api_undeclarable_features_stay_unknown(
    kubeconfig: pathlib.Path, options: probe.Options, feature: model.Feature
) -> None:
    for row in _run(kubeconfig, options).rows:
        result = row.features[feature]
        assert (result.declared, result.verified, result.inferred) == (None, None, None)
        assert f"--probe {row.driver.name}=EP" in result.evidence


def test_fake_api_declarations_quote_the_objects(
    kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    gp3 = _rows(_run(kubeconfig, options))["gp3"].declared
    assert "volumeBindingMode=WaitForFirstConsumer" in gp3["storage_class"]
    assert "default=true" in gp3["storage_class"]
    assert "type=gp3" in gp3["parameters"]
    assert gp3["volume_snapshot_classes"] == ["ebs-csi-snapclass (deletionPolicy=Delete, default)"]
    assert "seLinuxMount=true" in gp3["csi_driver"]
    assert len(gp3["csi_nodes"]) == len(K.NODES)


def test_fake_api_reports_never_carry_secret_values(
    fake: fakekube.FakeKube, kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    fake.add(
        K.storage_class(
            "chap", K.EBS, parameters={"chapPassword": "hunter2", "kmsKeyId": "arn:aws:kms:k"}
        )
    )
    report = _run(kubeconfig, options)
    assert "chapPassword=<redacted>" in _rows(report)["chap"].declared["parameters"]
    text = json_doc.render(report)
    assert "hunter2" not in text
    assert "arn:aws:kms" not in text


# -- plan -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sc", "expected"),
    [
        (
            "gp3",
            {
                "vm_snapshot": "csi-snapshot",
                "vm_restore": "csi-restore",
                "vm_clone": "snapshot-restore",
                "disk_expand": "csi-expand",
                "live_migration": "storage-migration",
            },
        ),
        (
            "nfs-csi",
            {
                "vm_snapshot": "host-copy",
                "vm_restore": "host-copy",
                "vm_clone": "host-copy",
                "disk_expand": "copy-to-larger",
                "live_migration": "storage-migration",
            },
        ),
    ],
    ids=["gp3", "nfs-csi"],
)
def test_fake_api_plan_trusts_cluster_declarations(
    kubeconfig: pathlib.Path, options: probe.Options, sc: str, expected: dict[str, str]
) -> None:
    plan = _rows(_run(kubeconfig, options))[sc].plan
    assert {op: plan[op].strategy for op in expected} == expected


def test_fake_api_plan_never_assumes_shared_storage(
    kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    # Migrating without a storage copy over storage that is not really shared
    # corrupts the disk, and no Kubernetes object proves sharing.
    for row in _run(kubeconfig, options).rows:
        assert row.plan["live_migration"].strategy == "storage-migration"


# -- warnings -------------------------------------------------------------------


def test_fake_api_warnings_about_the_cluster_setup(
    fake: fakekube.FakeKube, kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    fake.add(
        K.csi_driver("orphan.csi.example.com"),
        K.storage_class("orphan", "orphan.csi.example.com"),
        K.storage_class("nodeonly", K.NFS.replace("nfs", "smb")),
        K.csi_node("ip-10-0-3-9.ec2.internal", [K.node_driver("smb.csi.k8s.io", "n3")]),
        K.storage_class("gp2", K.EBS, default=True),
    )
    rows = _rows(_run(kubeconfig, options))
    assert "no CSIDriver object and no CSINode lists it" in _one(rows["local-path"].warnings)
    assert "registered on no node" in _one(rows["orphan"].warnings)
    assert "no CSIDriver object for smb.csi.k8s.io" in _one(rows["nodeonly"].warnings)
    for name in ("gp2", "gp3"):
        assert "one of 2 default classes (gp2, gp3)" in _one(rows[name].warnings)
    assert rows["nfs-csi"].warnings == []
    assert rows["csi-vm-local"].warnings == []


def test_fake_api_two_default_snapshot_classes_are_flagged(
    fake: fakekube.FakeKube, kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    fake.add(K.snapshot_class("ebs-retain", K.EBS, default=True))
    warning = _one(_rows(_run(kubeconfig, options))["gp3"].warnings)
    assert "2 default VolumeSnapshotClasses (ebs-csi-snapclass, ebs-retain)" in warning


def test_fake_api_missing_snapshot_crd_is_no_snapshots(
    tmp_path: pathlib.Path, options: probe.Options
) -> None:
    with fakekube.running(snapshot_crds=False) as fake:
        fake.add(*[o for o in K.typical_cluster() if o["kind"] != "VolumeSnapshotClass"])
        report = _run(fake.kubeconfig(tmp_path / "kubeconfig"), options)
    gp3 = _rows(report)["gp3"]
    assert gp3.error is None
    assert gp3.features[F.SNAPSHOT].declared is False
    assert "snapshot.storage.k8s.io CRDs" in gp3.features[F.SNAPSHOT].evidence
    assert gp3.plan["vm_snapshot"].strategy == "host-copy"


# -- API failures -----------------------------------------------------------------


def test_fake_api_forbidden_list_stops_with_rbac_hint(
    fake: fakekube.FakeKube, kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    fake.forbid("csinodes")
    with pytest.raises(errors.Rejected) as info:
        _run(kubeconfig, options)
    assert "HTTP 403" in info.value.message
    assert info.value.hint is not None
    assert "kubectl auth can-i list csinodes.storage.k8s.io" in info.value.hint


def test_fake_api_unreachable_server(tmp_path: pathlib.Path, options: probe.Options) -> None:
    with fakekube.running() as gone:
        config = gone.kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(errors.Unreachable) as info:
        _run(config, options)
    assert "no answer" in info.value.message
    assert info.value.hint is not None
    assert "API server running" in info.value.hint


def test_fake_api_probe_for_a_provisioner_no_class_uses(
    kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    typo = {"ebs.csi.aws.co": probe.Target(label="ebs.csi.aws.co", endpoint="unix:///nowhere")}
    with pytest.raises(errors.InvalidInput) as info:
        _run(kubeconfig, options, typo)
    assert "ebs.csi.aws.co" in info.value.message
    assert info.value.hint is not None
    assert K.EBS in info.value.hint


# -- merging with probes ----------------------------------------------------------


def _local_target(endpoint: str) -> dict[str, probe.Target]:
    return {K.CSI_VM_LOCAL: probe.Target(label=K.CSI_VM_LOCAL, endpoint=endpoint)}


@pytest.fixture
def local_driver(tmp_path: pathlib.Path) -> Iterator[driverproc.DriverProcess]:
    drv = driverproc.start_driver(tmp_path / "driver")
    try:
        yield drv
    finally:
        drv.stop()


@pytest.mark.integration
def test_fake_api_merged_with_real_probe_of_local_driver(
    fake: fakekube.FakeKube,
    kubeconfig: pathlib.Path,
    options: probe.Options,
    local_driver: driverproc.DriverProcess,
) -> None:
    fake.add(K.storage_class("csi-vm-fixed-size", K.CSI_VM_LOCAL))
    rows = _rows(_run(kubeconfig, options, _local_target(local_driver.endpoint)))
    row = rows["csi-vm-local"]
    assert row.driver.endpoint == local_driver.endpoint
    assert row.driver.vendor_version
    clone = row.features[F.CLONE]
    assert (clone.declared, clone.verified) == (True, True)  # cluster silent: driver declares
    assert "driver:" in clone.evidence
    snapshot = row.features[F.SNAPSHOT]
    assert snapshot.verified is True
    assert "cluster: VolumeSnapshotClass csi-vm-local-snapclass" in snapshot.evidence
    assert row.features[F.BLOCK].verified is True
    assert row.features[F.MULTI_NODE_SHARED].verified is None  # one node endpoint only
    assert "controller" in row.declared
    assert row.plan["vm_clone"].strategy == "csi-clone"
    assert row.plan["disk_import"].strategy == "block"
    assert row.plan["live_migration"].strategy == "storage-migration"
    # The same driver behind a class that forbids growing PVCs: verified, but gated.
    fixed = rows["csi-vm-fixed-size"]
    expansion = fixed.features[F.EXPANSION_CONTROLLER]
    assert (expansion.declared, expansion.verified) == (False, True)
    assert fixed.plan["disk_expand"].strategy == "copy-to-larger"
    assert "set allowVolumeExpansion: true on StorageClass csi-vm-fixed-size" in _one(
        fixed.warnings
    )
    # Rows of other drivers are untouched by the probe.
    assert rows["gp3"].driver.endpoint == ""
    assert rows["gp3"].features[F.CLONE].declared is None


@pytest.mark.integration
def test_fake_api_merged_with_declared_only_probe(
    kubeconfig: pathlib.Path, tmp_path: pathlib.Path, local_driver: driverproc.DriverProcess
) -> None:
    options = probe.Options(declared_only=True, journal_dir=tmp_path / "journals")
    row = _rows(_run(kubeconfig, options, _local_target(local_driver.endpoint)))["csi-vm-local"]
    assert all(r.verified is None for r in row.features.values())
    assert row.features[F.CLONE].declared is True
    assert row.plan["vm_clone"].strategy == "csi-clone"


def test_fake_api_probe_that_fails_leaves_cluster_row(
    kubeconfig: pathlib.Path, options: probe.Options, tmp_path: pathlib.Path
) -> None:
    dead = f"unix://{tmp_path}/no-driver.sock"
    row = _rows(_run(kubeconfig, options, _local_target(dead)))["csi-vm-local"]
    assert row.error is None  # the class is real; only the probe failed
    assert f"probe of {dead} failed" in _one(row.warnings)
    assert row.features[F.SNAPSHOT].declared is True
    assert row.plan["vm_snapshot"].strategy == "csi-snapshot"


def _probe_report(name: str, **features: R) -> model.DriverReport:
    all_features = {f: features.get(str(f), R(evidence="not attempted")) for f in F}
    return model.DriverReport(
        driver=model.DriverInfo(label=name, endpoint="unix:///run/x.sock", name=name),
        mode="verified",
        features=all_features,
        declared={"controller": ["CREATE_DELETE_SNAPSHOT"]},
        warnings=["snapshot: declared but failed: CreateSnapshot: INTERNAL"],
    )


def _inventory(kubeconfig: pathlib.Path) -> cluster_inventory.Inventory:
    with kube_api.connect(kubeconfig_file=kubeconfig, policy=QUICK) as api:
        return cluster_inventory.read(api)


def test_fake_api_probe_of_another_driver_is_not_merged(
    kubeconfig: pathlib.Path,
) -> None:
    inventory = _inventory(kubeconfig)
    other = _probe_report("hostpath.csi.k8s.io", clone=R(declared=True, verified=True))
    row = _rows(cluster.report(inventory, probed={K.EBS: other}))["gp3"]
    assert "serves driver 'hostpath.csi.k8s.io', not 'ebs.csi.aws.com'" in _one(row.warnings)
    assert row.features[F.CLONE].verified is None


def test_fake_api_cluster_declaration_the_probe_refutes(kubeconfig: pathlib.Path) -> None:
    inventory = _inventory(kubeconfig)
    broken = _probe_report(
        K.EBS, snapshot=R(declared=True, verified=False, evidence="CreateSnapshot: INTERNAL")
    )
    row = _rows(cluster.report(inventory, probed={K.EBS: broken}))["gp3"]
    assert row.features[F.SNAPSHOT].verified is False
    assert row.plan["vm_snapshot"].strategy == "host-copy"  # verified wins over declared
    assert any(w.startswith("driver: snapshot: declared but failed") for w in row.warnings)
    assert any(
        "the cluster declares it (VolumeSnapshotClass ebs-csi-snapclass" in w
        and "the probe found it does not work" in w
        for w in row.warnings
    )


def test_fake_api_works_undeclared_stays_out_of_the_plan(kubeconfig: pathlib.Path) -> None:
    """The class allows expansion, but the resizer never calls what the driver does not declare."""
    inventory = _inventory(kubeconfig)
    quiet = _probe_report(
        K.EBS, expansion_controller=R(declared=False, verified=True, evidence="grown")
    )
    row = _rows(cluster.report(inventory, probed={K.EBS: quiet}))["gp3"]
    assert row.features[F.EXPANSION_CONTROLLER].verified is True
    assert row.plan["disk_expand"].strategy == "copy-to-larger"
    assert "works, undeclared" in row.plan["disk_expand"].reason


# -- schema and CLI -----------------------------------------------------------------


def test_fake_api_cluster_reports_validate_against_schema(
    fake: fakekube.FakeKube, kubeconfig: pathlib.Path, options: probe.Options
) -> None:
    report = _run(kubeconfig, options)
    schema.validate(model.to_json_dict(report))
    schema.validate(json.loads(json_doc.render(report)))
    for row in report.rows:
        schema.validate(model.to_json_dict(row))


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("cluster")(cluster_cmd.cluster)
    return app


def test_fake_api_cli_prints_json_report(
    kubeconfig: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSI_VM_STATE_DIR", str(tmp_path / "state"))
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        _cli(), ["--kubeconfig", str(kubeconfig), "-o", "json", "--output-file", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["kind"] == "cluster"
    assert [r["driver"]["label"] for r in data["rows"]] == CLASSES


def test_fake_api_cli_bad_probe_option(kubeconfig: pathlib.Path) -> None:
    result = CliRunner().invoke(_cli(), ["--kubeconfig", str(kubeconfig), "--probe", "ebs"])
    assert isinstance(result.exception, errors.InvalidInput)
    assert "PROVISIONER=ENDPOINT" in str(result.exception)


def test_cli_help_names_every_option() -> None:
    result = CliRunner().invoke(_cli(), ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for option in ("--kubeconfig", "--context", "--probe", "--declared-only", "--output-file"):
        assert option in result.output


def _one(items: list[str]) -> str:
    assert len(items) == 1, items
    return items[0]
