"""The public CSI driver list read into declared-only report rows, and its totals.

Expected values are stated from reading the shared table by eye, or counted
here with deliberately simpler code than the parser's, never copied from the
parser's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capabilities import catalogue, ladder, model
from csi_vm import errors

F = model.Feature

# Read off the shared list (revision 2024-11-06), row by row:
# name -> (CSI driver name, Other Features words, multi-writer filesystem, multi-writer block)
NAMED_ROWS = {
    "AWS Elastic Block Storage": (
        "ebs.csi.aws.com",
        {"block", "snapshot", "expansion"},
        False,
        False,
    ),
    "NFS": ("nfs.csi.k8s.io", set(), True, False),
    "Azure Disk": (
        "disk.csi.azure.com",
        {"block", "snapshot", "expansion", "clone", "topology"},
        False,
        False,
    ),
    "Lightbits Labs": (
        "csi.lightbitslabs.com",
        {"block", "snapshot", "expansion", "clone"},
        False,  # "Read/Write Single Pod (in volumeMode FileSystem)"
        True,  # "Read/Write Multiple Pods (in volumeMode Block)"
    ),
    "Longhorn": ("driver.longhorn.io", {"block"}, False, False),
}
WORDS = {
    "block": F.BLOCK,
    "snapshot": F.SNAPSHOT,
    "expansion": F.EXPANSION_CONTROLLER,
    "clone": F.CLONE,
    "topology": F.TOPOLOGY,
}


def _by_label(report: model.MatrixReport) -> dict[str, model.DriverReport]:
    return {row.driver.label: row for row in report.rows}


@pytest.mark.parametrize("label", sorted(NAMED_ROWS), ids=sorted(NAMED_ROWS))
def test_named_rows_declare_what_the_table_says(
    catalogue_report: model.MatrixReport, label: str
) -> None:
    name, words, rwx_fs, rwx_block = NAMED_ROWS[label]
    row = _by_label(catalogue_report)[label]
    assert row.mode == "catalogue"
    assert row.driver.name == name
    assert row.driver.production is True
    for word, feature in WORDS.items():
        assert row.features[feature].declared is (word in words), feature
    assert row.features[F.RWX_FILESYSTEM].declared is rwx_fs
    assert row.features[F.RWX_BLOCK].declared is rwx_block
    assert row.features[F.FILESYSTEM].declared is True
    assert all(result.verified is None for result in row.features.values())


def test_rows_carry_the_column_text_as_evidence(catalogue_report: model.MatrixReport) -> None:
    ebs = _by_label(catalogue_report)["AWS Elastic Block Storage"]
    assert ebs.features[F.SNAPSHOT].evidence == 'Other Features lists "Snapshot"'
    assert "Raw Block, Snapshot, Expansion" in ebs.features[F.CLONE].evidence
    assert "Read/Write Single Pod" in ebs.features[F.RWX_FILESYSTEM].evidence
    assert ebs.declared["other_features"] == ["Raw Block", "Snapshot", "Expansion"]


def test_plans_trust_declarations(catalogue_report: model.MatrixReport) -> None:
    rows = _by_label(catalogue_report)
    assert rows["Azure Disk"].plan == ladder.plan(rows["Azure Disk"].features, trust_declared=True)
    assert rows["Azure Disk"].plan["vm_clone"].strategy == "csi-clone"
    assert rows["AWS Elastic Block Storage"].plan["vm_clone"].strategy == "snapshot-restore"
    assert rows["NFS"].plan["vm_snapshot"].strategy == "host-copy"
    # A catalogue never verifies sharing, so live migration always copies storage.
    assert {r.plan["live_migration"].strategy for r in catalogue_report.rows} == {
        "storage-migration"
    }


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Cinder", None),  # "Depends on the storage backend used"
        ("vSphere", True),  # "... Read/Write Multiple Pods (File Volume)"
        ("Nutanix", True),  # '"Read/Write Multiple Pods" with Nutanix Files'
        ("Huawei Storage CSI", True),  # "Read/Write Multiple Pod" (singular)
        ("Longhorn", False),  # "Read/Write Single Node"
        ("Secrets Store CSI Driver", False),  # "N/A"
    ],
    ids=["depends", "qualified-file", "quoted", "singular", "single-node", "not-applicable"],
)
def test_irregular_access_modes(
    catalogue_report: model.MatrixReport, label: str, expected: bool | None
) -> None:
    assert _by_label(catalogue_report)[label].features[F.RWX_FILESYSTEM].declared is expected


@pytest.mark.parametrize(
    ("label", "feature", "expected"),
    [
        ("vSphere", F.SNAPSHOT, True),  # "Snapshot (Block Volume)" after <br/>
        ("vSphere", F.TOPOLOGY, True),  # "Topology Aware (Block Volume)"
        ("Quobyte", F.SNAPSHOT, True),  # "Snapshots"
        ("NexentaStor Block Storage", F.BLOCK, True),  # "Raw block"
        ("Ceph RBD", F.CLONE, True),  # "Cloning,In-tree plugin migration"
        ("TopoLVM", F.CAPACITY, True),  # "Storage Capacity Tracking"
        ("AWS Elastic Block Storage", F.CAPACITY, None),  # nothing said
    ],
    ids=[
        "br-qualified",
        "topology-aware",
        "plural",
        "lower-case",
        "no-space",
        "capacity",
        "silent",
    ],
)
def test_irregular_feature_words(
    catalogue_report: model.MatrixReport, label: str, feature: model.Feature, expected: bool | None
) -> None:
    assert _by_label(catalogue_report)[label].features[feature].declared is expected


def test_rows_flag_what_they_cannot_read(catalogue_report: model.MatrixReport) -> None:
    rows = _by_label(catalogue_report)
    assert any("'File Storage'" in w for w in rows["oVirt"].warnings)
    assert any("Ephemeral" in w for w in rows["Vault"].warnings)
    assert rows["YanRongYun"].driver.name == ""
    assert rows["HostPath"].driver.production is False
    assert any("Sample Drivers" in w for w in rows["HostPath"].warnings)


def _independent_counts(text: str) -> tuple[int, dict[str, int]]:
    """Counts over the production table by plain substring tests on raw lines."""
    section = text.split("## Production Drivers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.count("|") >= 6][2:]  # no header
    last = [row.split("|")[7].lower() for row in rows]
    modes = [row.split("|")[5].lower() for row in rows]
    return len(rows), {
        "snapshot": sum("snapshot" not in cell for cell in last),
        "expansion": sum("expansion" not in cell for cell in last),
        "clone": sum("cloning" not in cell for cell in last),
        "block": sum("raw block" not in cell for cell in last),
        "rwx": sum("multiple pod" not in cell for cell in modes),
    }


def test_totals_match_an_independent_count(
    catalogue_report: model.MatrixReport, driver_list_text: str
) -> None:
    drivers, lacking = _independent_counts(driver_list_text)
    totals = catalogue_report.totals
    assert totals is not None
    assert totals.drivers == drivers
    assert totals.lacking == lacking
    for key, count in lacking.items():
        assert totals.lacking_percent[key] == round(100 * count / drivers, 1)
    # Every gap has a last rung that needs nothing the list can lack.
    assert totals.offered_by_fallback == lacking


def test_totals_of_named_rows(catalogue_report: model.MatrixReport) -> None:
    rows = [_by_label(catalogue_report)[label] for label in NAMED_ROWS]
    totals = catalogue.totals(rows)
    # From NAMED_ROWS: no snapshot: NFS, Longhorn; no RWX: EBS, Azure Disk,
    # Longhorn; no expansion: NFS, Longhorn; no cloning: EBS, NFS, Longhorn;
    # no raw block: NFS.
    expected = {"snapshot": 2, "rwx": 3, "expansion": 2, "clone": 3, "block": 1}
    assert totals.drivers == 5
    assert totals.lacking == expected
    assert totals.offered_by_fallback == expected
    assert totals.lacking_percent["rwx"] == 60.0


# Irregular on purpose; a trailing backslash only joins a long row for line length.
SYNTHETIC = """\
# Drivers

## Production Drivers

| Name | CSI Driver Name | Persistence | Supported Access Modes | Other Features |
|------|-----------------|-------------|------------------------|----------------|
| [Alpha](https://example.org/a) | `alpha.example.org` | Persistent | Read/Write Single Pod \
| Raw Block, Snapshot, Expansion, Cloning |
| Beta   |   `beta.example.org`|Persistent|Read/Write Multiple Pods|
| Gamma | `gamma.example.org` | Persistent | Read/Write Single Pod | Snapshot<br/>Topology |
| Delta | `delta.example.org` | Ephemeral | N/A | |

## Sample Drivers

Name | Status
-----|-------
Sample | Prototype
"""


def test_synthetic_table_totals() -> None:
    report = catalogue.report(SYNTHETIC)
    assert [r.driver.label for r in report.rows] == ["Alpha", "Beta", "Gamma", "Delta", "Sample"]
    assert report.totals == model.EcosystemTotals(
        drivers=4,
        lacking={"snapshot": 2, "rwx": 3, "expansion": 3, "clone": 3, "block": 3},
        lacking_percent={
            "snapshot": 50.0,
            "rwx": 75.0,
            "expansion": 75.0,
            "clone": 75.0,
            "block": 75.0,
        },
        offered_by_fallback={"snapshot": 2, "rwx": 3, "expansion": 3, "clone": 3, "block": 3},
    )
    gamma = report.rows[2]
    assert gamma.features[F.TOPOLOGY].declared is True
    assert gamma.plan["vm_clone"].strategy == "snapshot-restore"


def test_totals_skip_failed_and_non_production_rows() -> None:
    rows = catalogue.parse(SYNTHETIC)
    failed = model.DriverReport(
        driver=model.DriverInfo(label="down", endpoint="unix:///x"), mode="verified", error="hung"
    )
    assert catalogue.totals([*rows, failed]).drivers == 4
    assert catalogue.totals([]).lacking_percent["snapshot"] == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# Drivers\n\nNo table here, only prose.\n",
        "a | b\n--|--\n1 | 2\n",
        "Name | Status\n-----|------\nx | y\n",
        "Name | Other Features\n-----|------\n",
    ],
    ids=["empty", "prose", "no-name-column", "no-features-column", "no-rows"],
)
def test_no_driver_table_is_a_clear_error(text: str) -> None:
    with pytest.raises(errors.InvalidInput, match="no CSI driver table found"):
        catalogue.parse(text)


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.md"
    with pytest.raises(errors.InvalidInput, match="cannot read CSI driver list"):
        catalogue.report_from_file(missing)
