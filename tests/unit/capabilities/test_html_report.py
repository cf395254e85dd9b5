"""The HTML page's layout: who and when on top, the plan first, plain words for people."""

from __future__ import annotations

import html.parser
import json

import pytest

from capabilities import model, render
from capabilities.checks import controller
from capabilities.render import common, html_page, html_plan, plain
from tests.unit.capabilities import conftest

F = model.Feature
RAW = "block volumes created for SNW,SNRO,MNRO; refused MNMW,SNSW"


class _Page(html.parser.HTMLParser):
    """Visible text, and the title attributes, of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.visible: list[str] = []
        self.titles: list[str] = []
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "title")
        self.titles += [v or "" for k, v in attrs if k == "title"]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "title")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.visible.append(data)

    @property
    def text(self) -> str:
        return "".join(self.visible)


def _stamped(report: model.DriverReport) -> model.DriverReport:
    return report.model_copy(update={"generated_at": "2024-11-06T12:00:00+00:00"})


def _with_raw_evidence() -> model.DriverReport:
    report = _stamped(conftest.limited_report())
    features = dict(report.features)
    features[F.BLOCK] = model.FeatureResult(declared=True, verified=True, evidence=RAW)
    return report.model_copy(update={"features": features})


def test_title_names_the_driver_and_the_time_not_the_socket() -> None:
    report = _stamped(conftest.limited_report())
    text = html_page.render(report)
    title = text[text.index("<title>") + 7 : text.index("</title>")]
    assert title == "csi-vm capabilities of limited.csi.example.com, 2024-11-06 12:00 UTC"
    assert f"<h1>{title}</h1>" in text
    assert report.driver.endpoint not in title


def test_a_driver_not_reached_is_named_by_its_label() -> None:
    assert common.title(conftest.failed_report()) == "csi-vm capabilities of hung"


def test_matrix_title_counts_drivers_and_says_when(matrix: model.MatrixReport) -> None:
    assert common.title(matrix) == "csi-vm capability matrix of 4 drivers, 2024-11-06 12:00 UTC"


@pytest.mark.parametrize(
    ("iso", "shown"),
    [
        ("2024-11-06T13:30:00+01:00", "2024-11-06 12:30 UTC"),
        ("2024-11-06T12:00:00", "2024-11-06 12:00"),
        ("yesterday", "yesterday"),
    ],
    ids=["offset", "naive", "not-a-time"],
)
def test_stamp(iso: str, shown: str) -> None:
    assert common.stamp(iso) == shown


@pytest.mark.parametrize("name", ["limited", "matrix", "failed"], ids=str)
def test_plan_and_warnings_come_before_features_and_key(name: str) -> None:
    text = html_page.render(conftest.SYNTHETIC[name]())
    order = [text.index(mark) for mark in ('class="legend"', '<h2 id="plan">', "<h2>Features")]
    if "<h2>Warnings" in text:
        order.insert(2, text.index("<h2>Warnings"))
    order.append(text.index('<h2 id="key">'))
    assert order == sorted(order)


def test_legend_is_one_line_linking_to_the_key(limited: model.DriverReport) -> None:
    text = html_page.render(limited)
    start = text.index('<p class="legend">')
    legend = text[start : text.index("</p>", start)]
    assert "\n" not in legend
    assert '<a href="#key">full key</a>' in legend


def test_single_plan_shows_every_reason(limited: model.DriverReport) -> None:
    page = _Page(html_page.render(limited))
    for choice in limited.plan.values():
        assert choice.reason in page.text


def test_matrix_plan_puts_drivers_side_by_side_with_reasons_on_hover(
    matrix: model.MatrixReport,
) -> None:
    section = html_plan.plan(matrix)
    for row in matrix.rows:
        assert html_page.esc(row.driver.label) in section
        for choice in row.plan.values():
            assert f'title="{html_page.esc(choice.reason)}"' in section
    hung = matrix.rows[-1]
    assert hung.error and f'title="{html_page.esc(hung.error)}"' in section
    # The failed driver's column is one cell saying so, not a dash per operation.
    assert section.count("no plan: the probe failed") == 1


def test_catalogue_plan_is_a_summary(catalogue_report: model.MatrixReport) -> None:
    section = html_plan.plan(catalogue_report)
    assert "drivers per strategy" in section
    assert section.count("<tr>") == len(common.plan_summary(catalogue_report.rows)) + 1


def test_failed_probe_says_why_where_the_plan_would_be() -> None:
    section = html_plan.plan(conftest.failed_report())
    assert 'class="error"' in section and "did not answer GetPluginInfo" in section


def test_evidence_in_plain_words_raw_on_hover_and_in_json() -> None:
    report = _with_raw_evidence()
    page = _Page(html_page.render(report))
    assert "read-write on one node, read-only on one node, read-only on many nodes" in page.text
    assert "refused read-write on many nodes, one writer on one node" in page.text
    assert "SNW" not in page.text and "MNMW" not in page.text
    assert RAW in page.titles
    data = json.loads(render.render(report, "json"))
    assert data["features"]["block"]["evidence"] == RAW


def test_plain_words_leave_other_text_alone() -> None:
    for text in ("SNWX and CSNW stay", "ControllerExpandVolume worked", ""):
        assert plain.words(text) == text
    assert plain.hover(model.FeatureResult(evidence="no jargon here")) == ""


def test_every_access_mode_the_checks_write_has_plain_words() -> None:
    assert set(plain.ACCESS_MODES) == set(controller._SHORT.values())


def test_failed_drivers_are_counted_beside_a_plan_summary() -> None:
    rows = [conftest.full_report(), conftest.failed_report()] * 5
    report = conftest.synthetic_matrix().model_copy(update={"rows": rows})
    section = html_plan.plan(report)
    assert "drivers per strategy" in section
    assert "5 drivers have no plan: their probe failed" in section
