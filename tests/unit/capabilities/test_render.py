"""Every renderer on the catalogue report and on synthetic probe reports."""

from __future__ import annotations

import io
import json
import re

import pytest
import yaml
from rich.console import Console

from capabilities import model, render
from capabilities.render import common, html_page, markdown_doc, table, testdriver
from csi_vm import errors

Report = model.DriverReport | model.MatrixReport


@pytest.mark.parametrize("fmt", render.FORMATS, ids=render.FORMATS)
def test_every_format_renders_every_report(
    any_report: Report, fmt: str, hostile: model.DriverReport
) -> None:
    text = render.render(any_report, fmt)
    assert text.endswith("\n")
    # Tables may shorten labels; hostile labels come out escaped (tested below).
    if fmt != "table" and any_report != hostile:
        for driver in common.rows(any_report):
            assert driver.driver.label in text


def test_unknown_format_is_rejected(limited: model.DriverReport) -> None:
    with pytest.raises(errors.InvalidInput, match="unknown report format 'pdf'"):
        render.render(limited, "pdf")


def test_json_is_the_model_dump(any_report: Report) -> None:
    text = render.render(any_report, "json")
    assert json.loads(text) == model.to_json_dict(any_report)
    assert text.startswith('{\n  "schema": "csi-vm.capabilities/v1"')


def test_yaml_holds_the_same_data(any_report: Report) -> None:
    assert yaml.safe_load(render.render(any_report, "yaml")) == model.to_json_dict(any_report)


@pytest.mark.parametrize("width", [100, 80], ids=["w100", "w80"])
def test_table_fits_the_console(any_report: Report, width: int) -> None:
    console = Console(width=width, record=True, file=io.StringIO())
    table.show(any_report, console)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width


def test_table_text_carries_colour_and_can_go_without(matrix: model.MatrixReport) -> None:
    report = matrix
    assert "\x1b[" in render.render(report, "table", color=True)
    assert "\x1b[" not in render.render(report, "table")


def test_long_matrices_abbreviate_and_summarise(
    catalogue_report: model.MatrixReport, matrix: model.MatrixReport
) -> None:
    text = render.render(catalogue_report, "table", color=False)
    assert "snp=snapshot" in text
    assert "Plan over" in text
    short = render.render(matrix, "table")
    assert "restore_from_snapshot" in short  # few drivers: full feature names
    assert "snp=" not in short


@pytest.mark.parametrize(
    ("feature", "code"),
    [
        (model.Feature.SNAPSHOT, "✗v!"),  # declared, verified failing
        (model.Feature.EXPANSION_CONTROLLER, "✓v!"),  # works, undeclared
        (model.Feature.MULTI_NODE_SHARED, "✗i"),  # inferred from topology
        (model.Feature.EXPANSION_NODE, "✓d"),  # declared, not attempted
        (model.Feature.CLONE, "✗d"),  # not declared, not attempted
        (model.Feature.BLOCK, "✓v"),
    ],
    ids=["declared-failing", "undeclared-working", "inferred", "declared", "absent", "verified"],
)
def test_cells_distinguish_basis(
    feature: model.Feature, code: str, limited: model.DriverReport
) -> None:
    report = limited
    assert common.cell(report.features[feature]).code == code
    assert f"| `{feature}` | {code} |" in render.render(report, "markdown")


def test_markdown_sections(any_report: Report) -> None:
    text = render.render(any_report, "markdown")
    assert "## Features" in text and "## Plan" in text
    if common.issues(common.rows(any_report)):
        assert "## Warnings and errors" in text
    assert ("## Totals" in text) is (common.totals(any_report) is not None)


def test_markdown_escapes_driver_text(hostile: model.DriverReport) -> None:
    text = markdown_doc.render(hostile)
    assert "<script>" not in text
    assert "&lt;script&gt;" in text
    # An unescaped pipe in a label would add a table column.
    assert "\\|" in text


def test_html_is_self_contained(any_report: Report) -> None:
    text = html_page.render(any_report)
    assert text.startswith("<!DOCTYPE html>")
    assert "<style>" in text
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", text, re.IGNORECASE)
    assert not re.search(r"src\s*=", text, re.IGNORECASE)
    # Links only to places on the page itself, each of which exists.
    targets = re.findall(r'href\s*=\s*"([^"]*)"', text, re.IGNORECASE)
    assert targets, "the legend links to the full key"
    for target in targets:
        assert target.startswith("#") and f'id="{target[1:]}"' in text, target
    assert "url(" not in text and "@import" not in text


def test_html_key_explains_bases(matrix: model.MatrixReport) -> None:
    text = html_page.render(matrix)
    key = text[text.index('<h2 id="key">') :]
    for word in ("verified", "declared", "inferred", "fallback"):
        assert word in key


def test_html_escapes_driver_text(hostile: model.DriverReport) -> None:
    text = html_page.render(hostile)
    assert "<script>" not in text
    assert text.count("&lt;script&gt;") >= 3
    assert html_page.esc(hostile.driver.label) in text


def test_html_colour_codes_cells(matrix: model.MatrixReport) -> None:
    text = html_page.render(matrix)
    for css in ("yes-verified", "no-verified", "no-inferred", "yes-declared", "mismatch"):
        assert f'class="c {css}' in text or f" {css}" in text


def test_testdriver_one_document_per_driver(any_report: Report) -> None:
    documents = list(yaml.safe_load_all(render.render(any_report, "testdriver")))
    drivers = common.rows(any_report)
    assert len(documents) == len(drivers)
    allowed = {key.key for key in testdriver.KEYS}
    for document, driver in zip(documents, drivers, strict=True):
        info = document["DriverInfo"]
        assert info["Name"] == (driver.driver.name or driver.driver.label)
        assert set(info["Capabilities"]) <= allowed
        assert all(isinstance(v, bool) for v in info["Capabilities"].values())
        assert document["StorageClass"] == {"FromName": True}


def test_testdriver_keys_are_the_suite_keys() -> None:
    assert [key.key for key in testdriver.KEYS] == [
        "persistence",
        "block",
        "fsGroup",
        "exec",
        "snapshotDataSource",
        "pvcDataSource",
        "offlineSnapshotClone",
        "multipods",
        "RWX",
        "controllerExpansion",
        "nodeExpansion",
        "onlineExpansion",
        "offlineExpansion",
        "volumeLimits",
        "singleNodeVolume",
        "topology",
        "capacity",
        "readWriteOncePod",
        "capReadOnlyMany",
    ]


def test_testdriver_mapping_of_a_verified_report(limited: model.DriverReport) -> None:
    decided, undecided = testdriver.capabilities(limited)
    assert decided["snapshotDataSource"] is False  # snapshot itself failed
    assert decided["pvcDataSource"] is False
    assert decided["controllerExpansion"] is True
    assert decided["RWX"] is False  # block multi-writer was refused
    assert "nodeExpansion" in undecided  # declared, never attempted
    assert "fsGroup" in undecided


def test_testdriver_mapping_of_catalogue_rows(catalogue_report: model.MatrixReport) -> None:
    rows = {row.driver.label: row for row in catalogue_report.rows}
    acorn, _ = testdriver.capabilities(rows["Acorn Block"])
    assert acorn == {
        "persistence": True,
        "block": True,
        "snapshotDataSource": True,
        "pvcDataSource": False,
        "RWX": False,
        "controllerExpansion": True,
        "topology": False,
    }
    nfs, _ = testdriver.capabilities(rows["Birch NFS"])
    assert nfs["RWX"] is True and nfs["multipods"] is True
    secrets, _ = testdriver.capabilities(rows["Juniper Secrets"])
    assert secrets["persistence"] is False


def test_testdriver_failed_probe_claims_nothing(matrix: model.MatrixReport) -> None:
    text = render.render(matrix, "testdriver")
    hung = list(yaml.safe_load_all(text))[-1]
    assert hung["DriverInfo"]["Capabilities"] == {}
    assert "The probe failed" in text


def test_testdriver_comments_cannot_be_broken_by_driver_text(
    hostile: model.DriverReport,
) -> None:
    report = hostile.model_copy(update={"error": "line one\nStorageClass: {}"})
    (document,) = yaml.safe_load_all(testdriver.render(report))
    assert document["StorageClass"] == {"FromName": True}
