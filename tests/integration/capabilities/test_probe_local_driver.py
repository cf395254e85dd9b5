"""The probe against the real local reference driver, in each configuration.

Real gRPC sockets, loop devices and mounts: needs root (CI runs as root).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from capabilities import model, probe
from capabilities import schema as report_schema
from csi_vm import errors
from csi_vm.csi import client as csi_client
from tests.support import driverproc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

F = model.Feature


def _host_grows_mounted_ext4() -> bool:
    """Online ext4 growth needs CAP_SYS_RESOURCE (bit 24), which some sandboxes withhold."""
    with open("/proc/self/status", encoding="utf-8") as stream:
        caps = next(line for line in stream if line.startswith("CapEff:"))
    return bool(int(caps.split()[1], 16) & (1 << 24))


# Without block volumes, online expansion is tried on a mounted filesystem,
# which the driver can only grow where the host allows it.
_ONLINE_FS = set() if _host_grows_mounted_ext4() else {"expansion_online", "expansion_node"}

# What switching a feature off takes away: the feature and those verified through it.
LOST = {
    # Restore and snapshot metadata are verified on a snapshot; group
    # snapshots are their own switch in the local driver.
    "snapshot": {F.SNAPSHOT, F.RESTORE_FROM_SNAPSHOT, F.SNAPSHOT_METADATA},
    "clone": {F.CLONE},
    "expansion": {
        F.EXPANSION_CONTROLLER,
        F.EXPANSION_NODE,
        F.EXPANSION_ONLINE,
        F.EXPANSION_OFFLINE,
    },
    "block": {F.BLOCK, F.RWX_BLOCK} | {F(f) for f in _ONLINE_FS},
    "multi-node": {F.RWX_BLOCK, F.RWX_FILESYSTEM},
    "stage-unstage": {F.STAGE_UNSTAGE},
    "group-snapshot": {F.GROUP_SNAPSHOT},
}

PLAN = {
    "snapshot": {"vm_snapshot": "host-copy", "vm_restore": "host-copy", "vm_clone": "csi-clone"},
    "clone": {"vm_clone": "snapshot-restore"},
    "expansion": {"disk_expand": "copy-to-larger"},
    "block": {"disk_import": "filesystem-image"},
    "multi-node": {"live_migration": "storage-migration"},
    "stage-unstage": {},
    "group-snapshot": {},
}

FULL_PLAN = {
    "vm_snapshot": "csi-snapshot",
    "vm_restore": "csi-restore",
    "vm_clone": "csi-clone",
    "disk_expand": "csi-expand",
    # One node only: sharing cannot be verified, so never shared-volume.
    "live_migration": "storage-migration",
    "disk_import": "block",
}


def _options(tmp_path: pathlib.Path, *, declared_only: bool = False) -> probe.Options:
    return probe.Options(
        declared_only=declared_only,
        journal_dir=tmp_path / "journals",
        work_dir=tmp_path / "node",
    )


def _verified(report: model.DriverReport) -> set[model.Feature]:
    return {f for f, r in report.features.items() if r.verified is True}


def _inventory(endpoint: str) -> tuple[set[str], set[str]]:
    with csi_client.Client(endpoint) as c:
        volumes = {e.volume.volume_id for e in c.list_volumes()}
        snapshots = _snapshots(c)
    return volumes, snapshots


def _snapshots(c: csi_client.Client) -> set[str]:
    try:
        return {s.snapshot_id for s in c.list_snapshots()}
    except errors.Unsupported:  # a driver without snapshots has none to leave behind
        return set()


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[model.DriverReport]:
    tmp = tmp_path_factory.mktemp("full")
    drv = driverproc.start_driver(tmp)
    try:
        before = _inventory(drv.endpoint)
        report = probe.run(probe.Target(label="full", endpoint=drv.endpoint), _options(tmp))
        assert _inventory(drv.endpoint) == before
        yield report
    finally:
        drv.stop()


def test_full_driver_verifies_everything(full_report: model.DriverReport) -> None:
    assert full_report.error is None
    expected_true = set(F) - {F.MULTI_NODE_SHARED, F.MODIFY_VOLUME}
    assert expected_true <= _verified(full_report), full_report.features
    assert full_report.warnings == []
    assert {op: c.strategy for op, c in full_report.plan.items()} == FULL_PLAN
    report_schema.validate(model.to_json_dict(full_report))


def test_single_node_sharing_is_inferred_not_verified(full_report: model.DriverReport) -> None:
    sharing = full_report.features[F.MULTI_NODE_SHARED]
    assert sharing.verified is None
    assert sharing.inferred is False
    assert "pins it to" in sharing.evidence


@pytest.mark.parametrize("feature", sorted(LOST), ids=lambda f: f"without-{f}")
def test_switched_off_feature_is_exactly_what_is_lost(
    feature: str, full_report: model.DriverReport, tmp_path: pathlib.Path
) -> None:
    drv = driverproc.start_driver(tmp_path, without=(feature,))
    try:
        before = _inventory(drv.endpoint)
        report = probe.run(probe.Target(label=feature, endpoint=drv.endpoint), _options(tmp_path))
        after = _inventory(drv.endpoint)
    finally:
        drv.stop()
    assert report.error is None
    assert _verified(full_report) - _verified(report) == LOST[feature]
    assert _verified(report) <= _verified(full_report)
    for op, strategy in PLAN[feature].items():
        assert report.plan[op].strategy == strategy, report.plan[op]
    assert before == after
    flagged = {w.split(":")[0] for w in report.warnings}
    # Only what the host refuses may be flagged as declared-but-failing.
    assert flagged <= _ONLINE_FS, report.warnings
    report_schema.validate(model.to_json_dict(report))


@pytest.mark.parametrize("feature", ["snapshot", "clone"], ids=lambda f: f"broken-{f}")
def test_declared_but_failing_is_flagged(feature: str, tmp_path: pathlib.Path) -> None:
    drv = driverproc.start_driver(tmp_path, advertise_broken=(feature,))
    try:
        report = probe.run(probe.Target(label=feature, endpoint=drv.endpoint), _options(tmp_path))
    finally:
        drv.stop()
    result = report.features[F(feature)]
    assert result.declared is True
    assert result.verified is False
    assert any(w.startswith(f"{feature}: declared but failed") for w in report.warnings)


def test_declared_only_creates_nothing(tmp_path: pathlib.Path) -> None:
    drv = driverproc.start_driver(tmp_path)
    try:
        before = _inventory(drv.endpoint)
        report = probe.run(
            probe.Target(label="d", endpoint=drv.endpoint), _options(tmp_path, declared_only=True)
        )
        assert _inventory(drv.endpoint) == before
    finally:
        drv.stop()
    assert report.mode == "declared-only"
    assert all(r.verified is None for r in report.features.values())
    assert report.features[F.SNAPSHOT].declared is True
    assert report.plan["vm_snapshot"].strategy == "csi-snapshot"
    assert not (tmp_path / "journals").exists()


def test_two_shared_nodes_verify_sharing(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "shared-state"
    a = driverproc.start_driver(tmp_path / "a", node_id="node-a", shared=True, state_dir=state)
    b = driverproc.start_driver(tmp_path / "b", node_id="node-b", shared=True, state_dir=state)
    try:
        target = probe.Target(
            label="shared",
            endpoint=a.endpoint,
            nodes={"node-a": a.endpoint, "node-b": b.endpoint},
        )
        report = probe.run(target, _options(tmp_path))
    finally:
        b.stop()
        a.stop()
    sharing = report.features[F.MULTI_NODE_SHARED]
    assert sharing.verified is True, sharing.evidence
    assert report.plan["live_migration"].strategy == "shared-volume"


def test_two_unshared_nodes_refute_sharing(tmp_path: pathlib.Path) -> None:
    a = driverproc.start_driver(tmp_path / "a", node_id="node-a")
    b = driverproc.start_driver(tmp_path / "b", node_id="node-b")
    try:
        target = probe.Target(
            label="pinned", endpoint=a.endpoint, nodes={"node-a": a.endpoint, "node-b": b.endpoint}
        )
        report = probe.run(target, _options(tmp_path))
    finally:
        b.stop()
        a.stop()
    assert report.features[F.MULTI_NODE_SHARED].verified is False
    assert report.plan["live_migration"].strategy == "storage-migration"


def test_modify_volume_with_driver_parameters(tmp_path: pathlib.Path) -> None:
    drv = driverproc.start_driver(tmp_path)
    try:
        target = probe.Target(label="m", endpoint=drv.endpoint, modify_parameters={"tier": "fast"})
        report = probe.run(target, _options(tmp_path))
    finally:
        drv.stop()
    assert report.features[F.MODIFY_VOLUME].verified is True
    assert "tier" in report.features[F.MODIFY_VOLUME].evidence


def test_dead_endpoint_is_a_report_with_an_error(tmp_path: pathlib.Path) -> None:
    target = probe.Target(label="dead", endpoint=str(tmp_path / "none.sock"), timeout=1.0)
    report = probe.run(target, _options(tmp_path))
    assert report.error is not None
    assert "GetPluginInfo" in report.error
    assert report.plan == {}
