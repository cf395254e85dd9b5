"""CSI driver tables read into declared-only report rows, and their totals.

Most tests read ``data/drivers-table.md``, a table the project writes itself
in the public list's format; the last group checks the public list's own
figures and skips where that file is absent. Expected values are stated from
reading a table by eye, or counted here with deliberately simpler code than
the parser's, never copied from the parser's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from capabilities import catalogue, ladder, model, schema
from csi_vm import errors

F = model.Feature

# Read off data/drivers-table.md, row by row:
# name -> (CSI driver name, Other Features words, multi-writer filesystem, multi-writer block)
TABLE_ROWS = {
    "Acorn Block": ("block.acorn.example.org", {"block", "snapshot", "expansion"}, False, False),
    "Birch NFS": ("nfs.birch.example.org", set(), True, False),
    "Cedar Disk": (
        "disk.cedar.example.org",
        {"block", "snapshot", "expansion", "clone", "topology"},
        False,
        False,
    ),
    "Dune Flash": (
        "csi.dune.example.org",
        {"block", "snapshot", "expansion", "clone"},
        False,  # "Read/Write Single Pod (volumeMode Filesystem)"
        True,  # "Read/Write Multiple Pods (volumeMode Block)"
    ),
    "Elm Local": ("local.elm.example.org", {"block"}, False, False),
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


def _check_row(row: model.DriverReport, expected: tuple[str, set[str], bool, bool]) -> None:
    name, words, rwx_fs, rwx_block = expected
    assert row.mode == "catalogue"
    assert row.driver.name == name
    assert row.driver.production is True
    for word, feature in WORDS.items():
        assert row.features[feature].declared is (word in words), feature
    assert row.features[F.RWX_FILESYSTEM].declared is rwx_fs
    assert row.features[F.RWX_BLOCK].declared is rwx_block
    assert row.features[F.FILESYSTEM].declared is True
    assert all(result.verified is None for result in row.features.values())


@pytest.mark.parametrize("label", sorted(TABLE_ROWS), ids=sorted(TABLE_ROWS))
def test_named_rows_declare_what_the_table_says(
    catalogue_report: model.MatrixReport, label: str
) -> None:
    _check_row(_by_label(catalogue_report)[label], TABLE_ROWS[label])


def test_every_row_is_read_once_and_fenced_examples_are_not(
    catalogue_report: model.MatrixReport,
) -> None:
    labels = [row.driver.label for row in catalogue_report.rows]
    assert len(labels) == 21  # 19 production rows, 2 sample rows
    assert len(set(labels)) == len(labels)
    assert "Fenced" not in labels
    assert labels[-2:] == ["Toy Path", "Mock Mill"]


def test_rows_carry_the_column_text_as_evidence(catalogue_report: model.MatrixReport) -> None:
    acorn = _by_label(catalogue_report)["Acorn Block"]
    assert acorn.features[F.SNAPSHOT].evidence == 'Other Features lists "Snapshot"'
    assert "Raw Block, Snapshot, Expansion" in acorn.features[F.CLONE].evidence
    assert "Read/Write Single Pod" in acorn.features[F.RWX_FILESYSTEM].evidence
    assert acorn.declared["other_features"] == ["Raw Block", "Snapshot", "Expansion"]
    assert acorn.declared["csi_versions"] == ["v1.0, v1.1"]


def test_plans_trust_declarations(catalogue_report: model.MatrixReport) -> None:
    rows = _by_label(catalogue_report)
    assert rows["Cedar Disk"].plan == ladder.plan(rows["Cedar Disk"].features, trust_declared=True)
    assert rows["Cedar Disk"].plan["vm_clone"].strategy == "csi-clone"
    assert rows["Acorn Block"].plan["vm_clone"].strategy == "snapshot-restore"
    assert rows["Birch NFS"].plan["vm_snapshot"].strategy == "host-copy"
    # A catalogue never verifies sharing, so live migration always copies storage.
    assert {r.plan["live_migration"].strategy for r in catalogue_report.rows} == {
        "storage-migration"
    }


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Fir Gateway", None),  # "Depends on the storage behind the gateway"
        ("Grove Sphere", True),  # "... <br/><br/> Read/Write Multiple Pods (File Volume)"
        ("Hazel Files", True),  # '"Read/Write Multiple Pods" with Hazel Files'
        ("Ivy Array", True),  # "Read/Write Multiple Pod" (singular)
        ("Elm Local", False),  # "Read/Write Single Node"
        ("Juniper Secrets", False),  # "N/A"
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
        ("Grove Sphere", F.SNAPSHOT, True),  # "Snapshot (Block Volume)" after <br/>
        ("Grove Sphere", F.EXPANSION_CONTROLLER, True),  # after <br/><br/>
        ("Grove Sphere", F.TOPOLOGY, True),  # "Topology Aware (Block Volume)"
        ("Grove Sphere", F.RWX_BLOCK, False),  # multi-writer for files only
        ("Ivy Array", F.RWX_BLOCK, None),  # multi-writer, volume mode not stated
        ("Hazel Files", F.SNAPSHOT, True),  # "Snapshots"
        ("Hazel Files", F.RESTORE_FROM_SNAPSHOT, True),  # implied by snapshots
        ("Ivy Array", F.BLOCK, True),  # "Raw block"
        ("Kelp RBD", F.CLONE, True),  # "Cloning,In-tree plugin migration"
        ("Larch LVM", F.CAPACITY, True),  # "Storage Capacity Tracking"
        ("Acorn Block", F.CAPACITY, None),  # nothing said
        ("Oak Pipes", F.SNAPSHOT, True),  # an escaped pipe earlier in the row
        ("Quince", F.EXPANSION_CONTROLLER, True),  # a stray cell after the last
        ("Rowan", F.SNAPSHOT, True),  # outer pipes
        ("Spruce", F.CLONE, True),  # bold name, no link
    ],
    ids=[
        "br-qualified",
        "br-doubled",
        "topology-aware",
        "file-only-multi-writer",
        "mode-unstated",
        "plural",
        "restore-implied",
        "lower-case",
        "no-space",
        "capacity",
        "silent",
        "escaped-pipe",
        "surplus-cell",
        "outer-pipes",
        "bold-name",
    ],
)
def test_irregular_feature_words(
    catalogue_report: model.MatrixReport, label: str, feature: model.Feature, expected: bool | None
) -> None:
    assert _by_label(catalogue_report)[label].features[feature].declared is expected


def test_rows_flag_what_they_cannot_read(catalogue_report: model.MatrixReport) -> None:
    rows = _by_label(catalogue_report)
    assert any("'File Storage'" in w for w in rows["Maple Virt"].warnings)
    assert any("'In-tree plugin migration'" in w for w in rows["Kelp RBD"].warnings)
    assert any("Ephemeral" in w for w in rows["Juniper Secrets"].warnings)
    assert not any("Persistence" in w for w in rows["Ivy Array"].warnings)  # "and Ephemeral"
    assert rows["Nutmeg Cloud"].driver.name == ""  # "?"
    assert rows["Spruce"].driver.name == ""  # "-"
    assert any("no CSI driver name" in w for w in rows["Nutmeg Cloud"].warnings)
    assert any("'stray cell'" in w for w in rows["Quince"].warnings)
    assert rows["Toy Path"].driver.production is False
    assert any("Sample Drivers" in w for w in rows["Toy Path"].warnings)


def test_cells_lose_their_markup(catalogue_report: model.MatrixReport) -> None:
    rows = _by_label(catalogue_report)
    assert rows["Pine Generic"].driver.name == "org.pine.[X]"
    assert rows["Pine Generic"].declared["csi_versions"] == ["[v1.0, v1.5]"]
    assert rows["Oak Pipes"].declared["access_modes"] == ["Read/Write Single Pod"]
    assert rows["Mock Mill"].declared == {"status": ["Prototype"], "more_information": [""]}


def _independent_counts(text: str) -> tuple[int, dict[str, int]]:
    """Counts over the production table by plain substring tests on raw lines."""
    section = text.split("## Production Drivers", 1)[1].split("\n## ", 1)[0]
    lines = [line.replace("\\|", "").strip().removeprefix("|") for line in section.splitlines()]
    rows = [line for line in lines if line.count("|") >= 6][2:]  # no header
    last = [row.split("|")[7].lower() for row in rows]
    modes = [row.split("|")[5].lower() for row in rows]
    return len(rows), {
        "snapshot": sum("snapshot" not in cell for cell in last),
        "expansion": sum("expansion" not in cell for cell in last),
        "clone": sum("cloning" not in cell for cell in last),
        "block": sum("raw block" not in cell for cell in last),
        "rwx": sum("multiple pod" not in cell for cell in modes),
    }


def _check_totals(report: model.MatrixReport, text: str) -> None:
    drivers, lacking = _independent_counts(text)
    totals = report.totals
    assert totals is not None
    assert totals.drivers == drivers
    assert totals.lacking == lacking
    for key, count in lacking.items():
        assert totals.lacking_percent[key] == round(100 * count / drivers, 1)
    # Every gap has a last rung that needs nothing the list can lack.
    assert totals.offered_by_fallback == lacking


def test_totals_match_an_independent_count(
    catalogue_report: model.MatrixReport, driver_list_text: str
) -> None:
    assert _independent_counts(driver_list_text)[0] == 19
    _check_totals(catalogue_report, driver_list_text)


def test_totals_of_named_rows(catalogue_report: model.MatrixReport) -> None:
    rows = [_by_label(catalogue_report)[label] for label in TABLE_ROWS]
    totals = catalogue.totals(rows)
    # From TABLE_ROWS: no snapshot: Birch, Elm; no RWX: Acorn, Cedar, Elm; no
    # expansion: Birch, Elm; no cloning: Acorn, Birch, Elm; no raw block: Birch.
    expected = {"snapshot": 2, "rwx": 3, "expansion": 2, "clone": 3, "block": 1}
    assert totals.drivers == 5
    assert totals.lacking == expected
    assert totals.offered_by_fallback == expected
    assert totals.lacking_percent["rwx"] == 60.0


# Read off the public list (revision 2024-11-06), as TABLE_ROWS.
PUBLIC_ROWS = {
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
        False,
        True,
    ),
    "Longhorn": ("driver.longhorn.io", {"block"}, False, False),
}


@pytest.mark.parametrize("label", sorted(PUBLIC_ROWS), ids=sorted(PUBLIC_ROWS))
def test_public_list_rows(public_report: model.MatrixReport, label: str) -> None:
    _check_row(_by_label(public_report)[label], PUBLIC_ROWS[label])


def test_public_list_totals(public_report: model.MatrixReport, public_list_text: str) -> None:
    _check_totals(public_report, public_list_text)


def test_public_list_rows_validate(public_report: model.MatrixReport) -> None:
    for row in public_report.rows:
        schema.validate(model.to_json_dict(row))


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
