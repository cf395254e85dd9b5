"""The report as one self-contained HTML page.

Inline CSS only: no scripts, fonts, images or links to fetch, so the file can
be mailed or attached to a ticket and opens the same offline. Every text that
comes from a driver is escaped.
"""

from __future__ import annotations

import html

from capabilities import ladder, model
from capabilities.render import common

# Few drivers: open every plan; many (a catalogue): keep the page scannable.
_OPEN_PLANS_UP_TO = 8

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1d1d1f; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #c8c8cc; padding: 0.2em 0.5em; text-align: left; }
th.feature { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; }
td.c { text-align: center; min-width: 2.2em; }
.yes-verified { background: #1e8e3e; color: #fff; font-weight: bold; }
.no-verified { background: #c5221f; color: #fff; font-weight: bold; }
.yes-declared { background: #d7f0dc; border-style: dashed; }
.no-declared { background: #f9dedc; border-style: dashed; }
.yes-inferred { background: #d7f0dc; font-style: italic; }
.no-inferred { background: #f9dedc; font-style: italic; }
.unknown { background: #eeeeef; color: #6e6e73; }
.mismatch { outline: 3px solid #e37400; outline-offset: -3px; }
.preferred { color: #1e8e3e; } .fallback { color: #b06000; } .unavailable { color: #c5221f; }
.error { color: #c5221f; font-weight: bold; }
.meta, .note { color: #6e6e73; }
details { margin: 0.3em 0; } summary { cursor: pointer; font-weight: bold; }
"""

_BASES = (
    ("verified", "a probe used the feature on this driver and saw it work (or fail)"),
    ("declared", "the driver advertises it (capability RPCs) or the driver list says so"),
    ("inferred", "deduced from other evidence, e.g. cross-node sharing judged from topology"),
)


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def render(report: common.Report) -> str:
    drivers = common.rows(report)
    body = [f"<h1>{esc(common.title(report))}</h1>", _meta(report), _legend()]
    if isinstance(report, model.DriverReport):
        body += ["<h2>Features</h2>", _evidence(report)]
    else:
        body += ["<h2>Features</h2>", _matrix(drivers)]
    body += ["<h2>Plan</h2>", _plans(drivers)]
    body += _issues(drivers)
    found = common.totals(report)
    if found is not None:
        body += ["<h2>Totals</h2>", _totals(found)]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(common.title(report))}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _meta(report: common.Report) -> str:
    if isinstance(report, model.MatrixReport):
        text = f"schema {report.schema_} · {report.kind} · generated {report.generated_at}"
    else:
        info = report.driver
        parts = [f"schema {report.schema_}", f"mode {report.mode}", info.name, info.endpoint]
        text = " · ".join(p for p in parts if p)
    return f'<p class="meta">{esc(text)}</p>'


def _legend() -> str:
    samples = ("yes-verified", "no-verified", "yes-declared", "no-declared", "yes-inferred")
    codes = ("✓v", "✗v", "✓d", "✗d", "✓i")
    cells = "".join(
        f'<td class="c {css}">{code}</td>' for css, code in zip(samples, codes, strict=True)
    )
    rows = "".join(f"<li><b>{esc(code)}</b>: {esc(text)}</li>" for code, text in common.LEGEND)
    bases = "".join(f"<li><b>{name}</b>: {esc(text)}</li>" for name, text in _BASES)
    return (
        "<h2>Legend</h2>\n"
        f"<table><tr>{cells}"
        '<td class="c unknown">?</td><td class="c yes-declared mismatch">✓v!</td></tr></table>\n'
        f"<ul>{rows}</ul>\n<p>Where a value comes from:</p>\n<ul>{bases}</ul>\n"
        '<p>In plans, <span class="preferred">green</span> is the preferred strategy, '
        '<span class="fallback">amber</span> a fallback and '
        '<span class="unavailable">red</span> means no strategy works.</p>'
    )


def _matrix(drivers: list[model.DriverReport]) -> str:
    shown = common.known_features(drivers) or list(model.Feature)
    head = "".join(f'<th class="feature" title="{esc(f)}">{esc(f)}</th>' for f in shown)
    rows = [f"<tr><th>driver</th>{head}</tr>"]
    for driver in drivers:
        cells = "".join(_cell(driver.features.get(f)) for f in shown)
        rows.append(f"<tr><th>{_label(driver)}</th>{cells}</tr>")
    hidden = [f for f in model.Feature if f not in shown]
    note = (
        f'<p class="note">Unknown for every driver, so not shown: {esc(", ".join(hidden))}.</p>'
        if hidden
        else ""
    )
    return "<table>\n" + "\n".join(rows) + "\n</table>" + note


def _cell(result: model.FeatureResult | None) -> str:
    shown = common.cell(result)
    css = shown.css + (" mismatch" if shown.mismatch else "")
    tip = f"{shown.basis}: {shown.evidence}" if shown.evidence else shown.basis
    return f'<td class="c {css}" title="{esc(tip)}">{esc(shown.code)}</td>'


def _label(driver: model.DriverReport) -> str:
    label = esc(driver.driver.label)
    if driver.error:
        return f'{label} <span class="error">(error)</span>'
    if driver.driver.production is False:
        return f'{label} <span class="note">(non-production)</span>'
    return label


def _evidence(report: model.DriverReport) -> str:
    rows = ["<tr><th>feature</th><th>result</th><th>seconds</th><th>evidence</th></tr>"]
    for feature in model.Feature:
        result = report.features.get(feature)
        seconds = f"{result.seconds:.3f}" if result else ""
        evidence = esc(result.evidence) if result else "not reported"
        rows.append(
            f"<tr><td>{esc(feature)}</td>{_cell(result)}<td>{seconds}</td><td>{evidence}</td></tr>"
        )
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _plans(drivers: list[model.DriverReport]) -> str:
    opened = " open" if len(drivers) <= _OPEN_PLANS_UP_TO else ""
    return "\n".join(
        f"<details{opened}><summary>{_label(d)}</summary>\n{_plan(d)}</details>" for d in drivers
    )


def _plan(driver: model.DriverReport) -> str:
    rows = ["<tr><th>operation</th><th>strategy</th><th>why</th></tr>"]
    for op in ladder.OPERATIONS:
        choice = driver.plan.get(op)
        if choice is None:
            continue
        kind = common.plan_kind(op, choice.strategy)
        rows.append(
            f'<tr><td>{esc(op)}</td><td class="{kind}">{esc(choice.strategy)} ({kind})</td>'
            f"<td>{esc(choice.reason)}</td></tr>"
        )
    error = f'<p class="error">error: {esc(driver.error)}</p>\n' if driver.error else ""
    warnings = "".join(f"<li>{esc(w)}</li>" for w in driver.warnings)
    return (
        error
        + "<table>\n"
        + "\n".join(rows)
        + "\n</table>\n"
        + (f"<ul>{warnings}</ul>\n" if warnings else "")
    )


def _issues(drivers: list[model.DriverReport]) -> list[str]:
    found = common.issues(drivers)
    if not found:
        return []
    items = "".join(
        f'<li><b>{esc(label)}</b>: <span class="{"error" if is_error else ""}">'
        f"{'error: ' if is_error else ''}{esc(text)}</span></li>"
        for label, text, is_error in found
    )
    return ["<h2>Warnings and errors</h2>", f"<ul>{items}</ul>"]


def _totals(found: model.EcosystemTotals) -> str:
    rows = [
        "<tr><th>lacking</th><th>drivers</th><th>share</th><th>VM operation</th>"
        "<th>still offered by a fallback</th></tr>"
    ]
    rows += [
        f"<tr><td>{esc(g.title)}</td><td>{g.lacking}</td><td>{g.percent:.1f}%</td>"
        f"<td>{esc(g.operation)}</td><td>{g.offered}</td></tr>"
        for g in common.gap_lines(found)
    ]
    intro = f"<p>Over {found.drivers} drivers ({esc(common.TOTALS_NOTE)}).</p>"
    return intro + "\n<table>\n" + "\n".join(rows) + "\n</table>"
