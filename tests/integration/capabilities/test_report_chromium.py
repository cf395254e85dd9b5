"""The HTML report as a browser shows it: real headless Chromium at 1366x768.

The reports are real: the CLI probes the local reference driver (alone, and
in a matrix beside a killed driver), plus the synthetic reports with failing
probes and hostile, unbreakable driver text. For each page: the plan is on
the first screen without scrolling, nothing is wider than the window, the
legend is one line, and the screenshot is not blank.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from capabilities import model
from capabilities.render import html_page
from tests.support import chromium, driverproc, png
from tests.unit.capabilities import conftest as reports

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

WIDTH, HEIGHT = 1366, 768

# Geometry of the page as the browser laid it out, in CSS pixels.
_MEASURE = """(() => {
  const box = (q) => { const e = document.querySelector(q);
                       return e ? e.getBoundingClientRect().toJSON() : null; };
  return {
    innerWidth: window.innerWidth, innerHeight: window.innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    plan: box('#plan'), planBody: box('#plan ~ table.plan, #plan ~ p.error'),
    legend: box('p.legend'), keyLink: box('p.legend a[href="#key"]'),
  };
})()"""


@dataclasses.dataclass(frozen=True)
class Shown:
    layout: dict[str, object]
    screenshot: png.Image


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chromium.Browser]:
    with chromium.Browser.start(tmp_path_factory.mktemp("chromium-profile")) as started:
        yield started


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """HTML reports the CLI wrote for the real local driver, alone and beside a dead one."""
    tmp = tmp_path_factory.mktemp("probed")
    live = driverproc.start_driver(tmp / "live")
    dead = driverproc.start_driver(tmp / "dead")
    dead.kill()
    try:
        pages = {"probe": tmp / "probe.html", "matrix": tmp / "matrix.html"}
        pages["probe"].write_text(_cli(["probe", "-e", live.endpoint], tmp, code=0))
        matrix = ["matrix", "-e", f"local={live.endpoint}", "-e", f"down={dead.endpoint}"]
        pages["matrix"].write_text(_cli(matrix, tmp, code=4))
    finally:
        live.stop()
    return pages


def _cli(args: list[str], tmp: pathlib.Path, *, code: int) -> str:
    """The HTML report the CLI prints."""
    env = {**os.environ, "CSI_VM_STATE_DIR": str(tmp / "state")}
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", "capabilities", *args, "-o", "html"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == code, done.stderr
    return done.stdout


def _show(browser: chromium.Browser, page: pathlib.Path) -> Shown:
    tab = browser.open(page.as_uri(), width=WIDTH, height=HEIGHT)
    layout = tab.evaluate(_MEASURE)
    shot = tab.screenshot()
    page.with_suffix(".png").write_bytes(shot)  # kept beside the page, to look at
    return Shown(layout=layout, screenshot=png.decode(shot))


def _many() -> model.MatrixReport:
    """Beyond the side-by-side plan: twenty rows, so the plan is a summary."""
    made = [reports.SYNTHETIC[name]() for name in ("full", "limited", "declared-only", "failed")]
    rows = [
        row.model_copy(update={"driver": row.driver.model_copy(update={"label": f"d{i}"})})
        for i, row in enumerate(made * 5)
        if isinstance(row, model.DriverReport)
    ]
    return reports.synthetic_matrix().model_copy(update={"rows": rows})


def _unbreakable() -> model.MatrixReport:
    """Names, evidence and errors without a single place to break a line."""
    long = "x" * 300
    limited = reports.limited_report()
    features = {f: r.model_copy(update={"evidence": long}) for f, r in limited.features.items()}
    driver = limited.driver.model_copy(update={"label": long, "name": long, "endpoint": long})
    rows = [
        limited.model_copy(update={"driver": driver, "features": features, "warnings": [long]}),
        reports.failed_report().model_copy(update={"error": long}),
    ]
    return reports.synthetic_matrix().model_copy(update={"rows": rows})


def _unbreakable_one() -> model.DriverReport:
    return _unbreakable().rows[0]


SYNTHETIC: dict[str, Callable[[], model.DriverReport | model.MatrixReport]] = {
    "unbreakable": _unbreakable_one,
    "unbreakable-matrix": _unbreakable,
    "limited": reports.limited_report,
    "failed": reports.failed_report,
    "hostile": reports.hostile_report,
    "synthetic-matrix": reports.synthetic_matrix,
    "twenty-drivers": _many,
}
PAGES = ["probe", "matrix", *SYNTHETIC]


def _page(name: str, probed: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> pathlib.Path:
    if name in probed:
        return probed[name]
    path = tmp_path / f"{name}.html"
    path.write_text(html_page.render(SYNTHETIC[name]()), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", PAGES, ids=PAGES)
def test_plan_on_first_screen_and_nothing_too_wide(
    name: str,
    browser: chromium.Browser,
    probed: dict[str, pathlib.Path],
    tmp_path: pathlib.Path,
) -> None:
    shown = _show(browser, _page(name, probed, tmp_path))
    layout = shown.layout
    assert (layout["innerWidth"], layout["innerHeight"]) == (WIDTH, HEIGHT)
    assert isinstance(layout["scrollWidth"], int) and layout["scrollWidth"] <= WIDTH, layout
    plan, body = layout["plan"], layout["planBody"]
    assert isinstance(plan, dict) and isinstance(body, dict), layout
    # The whole plan (or, for a failed probe, why there is none) without scrolling.
    assert plan["top"] >= 0 and body["bottom"] <= HEIGHT, layout
    assert body["right"] <= WIDTH, layout
    legend, link = layout["legend"], layout["keyLink"]
    assert isinstance(legend, dict) and isinstance(link, dict), layout
    assert legend["height"] < 2 * link["height"], "the legend is one line"
    image = shown.screenshot
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    # Text, cells and colours: a blank or failed render has next to no dark pixels.
    assert image.count(darker_than=200) > WIDTH * HEIGHT // 100


def test_measurements_see_overflow_and_count_pixels(
    browser: chromium.Browser, tmp_path: pathlib.Path
) -> None:
    """The checks above can fail: a known page gives known answers."""
    page = tmp_path / "known.html"
    page.write_text(
        "<!DOCTYPE html><html><body style='margin:0;background:#fff'>"
        "<div style='width:100px;height:50px;background:#000'></div>"
        "<div style='width:2000px;height:1px'></div></body></html>",
        encoding="utf-8",
    )
    shown = _show(browser, page)
    assert shown.layout["scrollWidth"] == 2000
    assert shown.layout["plan"] is None
    assert shown.screenshot.count(darker_than=200) == 100 * 50
