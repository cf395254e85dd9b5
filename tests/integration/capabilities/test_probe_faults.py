"""The probe against the local driver with one --fault switch on: verdict, plan, warnings.

Each switch makes the driver lie one way (see `csi_vm.localdriver.fault_switches`);
the probe must believe effects, not answers, and leave nothing behind.
Real gRPC sockets, loop devices and mounts: needs root (CI runs as root).
"""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from capabilities import model, probe
from capabilities import schema as report_schema
from capabilities.render import common, markdown_doc
from csi_vm import errors
from csi_vm.csi import client as csi_client
from tests.support import driverproc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

F = model.Feature


@dataclasses.dataclass(frozen=True)
class Lie:
    features: tuple[model.Feature, ...]  # what the lie is about
    plan: dict[str, str]  # the strategies it forces
    asserted_plan: dict[str, str] = dataclasses.field(default_factory=dict)


# Served but undeclared: verified, not declared, used only when asserted.
UNDECLARED = {
    "snapshot": Lie(
        (F.SNAPSHOT, F.RESTORE_FROM_SNAPSHOT),
        {"vm_snapshot": "host-copy", "vm_restore": "host-copy"},
        {"vm_snapshot": "csi-snapshot", "vm_restore": "csi-restore"},
    ),
    "clone": Lie((F.CLONE,), {"vm_clone": "snapshot-restore"}, {"vm_clone": "csi-clone"}),
    "expansion": Lie(
        (F.EXPANSION_CONTROLLER,), {"disk_expand": "copy-to-larger"}, {"disk_expand": "csi-expand"}
    ),
    "group-snapshot": Lie((F.GROUP_SNAPSHOT,), {}),
    "stage-unstage": Lie((F.STAGE_UNSTAGE,), {}),
    "modify": Lie((F.MODIFY_VOLUME,), {}),
    "stats": Lie((F.VOLUME_STATS,), {}),
}

# Answers without effects: declared (where CSI can declare it), found not to work.
NO_EFFECT = {
    "expand-no-grow": Lie(
        (F.EXPANSION_CONTROLLER, F.EXPANSION_OFFLINE, F.EXPANSION_ONLINE),
        {"disk_expand": "copy-to-larger"},
    ),
    "clone-blank": Lie((F.CLONE,), {"vm_clone": "snapshot-restore"}),
    "snapshot-blank": Lie(
        (F.SNAPSHOT, F.RESTORE_FROM_SNAPSHOT),
        {"vm_snapshot": "host-copy", "vm_restore": "host-copy", "vm_clone": "csi-clone"},
    ),
    # The probe reads a snapshot only by restoring it: a blank restore fails both.
    "restore-blank": Lie(
        (F.SNAPSHOT, F.RESTORE_FROM_SNAPSHOT),
        {"vm_snapshot": "host-copy", "vm_restore": "host-copy", "vm_clone": "csi-clone"},
    ),
    "oversize": Lie((F.BLOCK,), {"disk_import": "filesystem-image"}),
}


def _inventory(endpoint: str) -> tuple[set[str], set[str]]:
    with csi_client.Client(endpoint) as c:
        volumes = {e.volume.volume_id for e in c.list_volumes()}
        try:
            snapshots = {s.snapshot_id for s in c.list_snapshots()}
        except errors.Unsupported:
            snapshots = set()
    return volumes, snapshots


def _probe(
    tmp_path: pathlib.Path, fault: str, *, asserted: frozenset[model.Feature] = frozenset()
) -> model.DriverReport:
    drv = driverproc.start_driver(tmp_path / "driver", extra_args=("--fault", fault))
    try:
        before = _inventory(drv.endpoint)
        target = probe.Target(
            label=fault,
            endpoint=drv.endpoint,
            asserted=asserted,
            # the local driver accepts a tier; without it modify is not attempted
            modify_parameters={"tier": "fast"},
        )
        options = probe.Options(journal_dir=tmp_path / "journals", work_dir=tmp_path / "node")
        report = probe.run(target, options)
        assert _inventory(drv.endpoint) == before, "the probe left objects behind"
    finally:
        drv.stop()
    assert report.error is None
    assert not [w for w in report.warnings if w.startswith("left behind")]
    report_schema.validate(model.to_json_dict(report))
    return report


def _strategies(report: model.DriverReport, ops: dict[str, str]) -> dict[str, str]:
    return {op: report.plan[op].strategy for op in ops}


@pytest.mark.parametrize("feature", sorted(UNDECLARED), ids=lambda f: f"undeclared-{f}")
def test_undeclared_feature_works_but_is_not_planned(feature: str, tmp_path: pathlib.Path) -> None:
    lie = UNDECLARED[feature]
    report = _probe(tmp_path, f"undeclared-{feature}")
    for f in lie.features:
        result = report.features[f]
        assert (result.declared, result.verified) == (False, True), (f, result)
        assert common.cell(result).code == "✓v!"
        assert any(w.startswith(f"{f}: works, undeclared") for w in report.warnings)
    assert _strategies(report, lie.plan) == lie.plan
    for op in lie.plan:
        assert "works, undeclared" in report.plan[op].reason
    page = markdown_doc.render(report)
    assert "works, undeclared" in page


@pytest.mark.parametrize("feature", ["snapshot", "expansion"])
def test_undeclared_feature_is_planned_when_asserted(feature: str, tmp_path: pathlib.Path) -> None:
    lie = UNDECLARED[feature]
    report = _probe(tmp_path, f"undeclared-{feature}", asserted=frozenset(lie.features))
    assert _strategies(report, lie.asserted_plan) == lie.asserted_plan
    for op in lie.asserted_plan:
        assert "asserted by config" in report.plan[op].reason


@pytest.mark.parametrize("fault", sorted(NO_EFFECT))
def test_answer_without_effect_is_not_verified(fault: str, tmp_path: pathlib.Path) -> None:
    lie = NO_EFFECT[fault]
    report = _probe(tmp_path, fault)
    page = markdown_doc.render(report)
    for f in lie.features:
        assert report.features[f].verified is False, (f, report.features[f])
        assert "✓" not in common.cell(report.features[f]).code  # never a tick
        if report.features[f].declared:
            assert any(w.startswith(f"{f}: declared but failed") for w in report.warnings)
            shown = str(f).replace("_", "\\_")  # markdown escapes underscores
            assert f"{shown}: declared but failed" in page
    assert _strategies(report, lie.plan) == lie.plan
