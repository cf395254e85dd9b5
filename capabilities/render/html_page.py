"""The report as one self-contained HTML page.

Inline CSS only: no scripts, fonts, images or links to fetch, so the file can
be mailed or attached to a ticket and opens the same offline; the only links
are to places on the page itself. Every text that comes from a driver is
escaped.

Top to bottom: who and when, a one-line legend, the plan (what an
administrator acts on), warnings and errors, the features with their
evidence, totals, and the full key the legend links to.
"""

from __future__ import annotations

import html

from capabilities import model
from capabilities.render import common, html_plan, plain

# Many warnings (a catalogue's unreadable cells) would push the features far
# down: beyond this many, they are folded.
_OPEN_ISSUES_UP_TO = 12

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1em 2em; color: #1d1d1f;
  overflow-wrap: break-word; }
h1 { font-size: 1.4em; margin: 0.2em 0; } h2 { font-size: 1.2em; margin: 1em 0 0.3em; }
table { border-collapse: collapse; margin: 0.3em 0; max-width: 100%; }
th, td { border: 1px solid #c8c8cc; padding: 0.2em 0.5em; text-align: left; }
/* Free text and driver names may hold long unbroken words (paths, ids):
   break them rather than widen the page; in table cells only "anywhere" does. */
.text, th.driver { overflow-wrap: anywhere; }
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
.meta, .note, .legend { color: #6e6e73; margin: 0.2em 0; }
.legend { font-size: 0.9em; }
.legend .k { display: inline-block; min-width: 1.8em; text-align: center;
  border: 1px solid #c8c8cc; color: #1d1d1f; }
.legend .yes-verified, .legend .no-verified { color: #fff; }
details { margin: 0.3em 0; } summary { cursor: pointer; font-weight: bold; }
"""

_BASES = (
    ("verified", "a probe used the feature on this driver and saw it work (or fail)"),
    ("declared", "the driver advertises it (capability RPCs) or the driver list says so"),
    ("inferred", "deduced from other evidence, e.g. cross-node sharing judged from topology"),
)

# (css, code, words) of the one-line legend.
_LEGEND_LINE = (
    ("yes-verified", "✓v", "works"),
    ("no-verified", "✗v", "fails (verified)"),
    ("yes-declared", "✓d", "declared"),
    ("no-declared", "✗d", "not declared"),
    ("yes-inferred", "✓i", "inferred"),
    ("unknown", "?", "unknown"),
    ("yes-declared mismatch", "!", "declared ≠ verified"),
)


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def render(report: common.Report) -> str:
    drivers = common.rows(report)
    title = esc(common.title(report))
    body = [f"<h1>{title}</h1>", _meta(report), _legend_line(), html_plan.plan(report)]
    body += _issues(drivers)
    if isinstance(report, model.DriverReport):
        body += ["<h2>Features</h2>", _evidence(report)]
    else:
        body += ["<h2>Features</h2>", _matrix(drivers), html_plan.details(drivers)]
    found = common.totals(report)
    if found is not None:
        body += ["<h2>Totals</h2>", _totals(found)]
    body.append(_key())
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def _meta(report: common.Report) -> str:
    if isinstance(report, model.MatrixReport):
        text = f"{report.kind} · schema {report.schema_}"
    else:
        info = report.driver
        version = f"version {info.vendor_version}" if info.vendor_version else ""
        label = info.label if info.label not in (info.name, info.endpoint) else ""
        parts = [label, f"mode {report.mode}", version, info.endpoint, f"schema {report.schema_}"]
        text = " · ".join(p for p in parts if p)
    return f'<p class="meta">{esc(text)}</p>'


def _legend_line() -> str:
    keys = " ".join(
        f'<span class="k {css}">{esc(code)}</span> {esc(words)}'
        for css, code, words in _LEGEND_LINE
    )
    plans = " ".join(
        f'<span class="{kind}">{kind}</span>'
        for kind in (common.PREFERRED, common.FALLBACK, common.UNAVAILABLE)
    )
    return f'<p class="legend">{keys} · plan: {plans} · <a href="#key">full key</a></p>'


def _key() -> str:
    """The full legend, at the end of the page where the one-line legend points."""
    samples = ("yes-verified", "no-verified", "yes-declared", "no-declared", "yes-inferred")
    codes = ("✓v", "✗v", "✓d", "✗d", "✓i")
    cells = "".join(
        f'<td class="c {css}">{code}</td>' for css, code in zip(samples, codes, strict=True)
    )
    rows = "".join(f"<li><b>{esc(code)}</b>: {esc(text)}</li>" for code, text in common.LEGEND)
    bases = "".join(f"<li><b>{name}</b>: {esc(text)}</li>" for name, text in _BASES)
    return (
        '<h2 id="key">Key</h2>\n'
        f"<table><tr>{cells}"
        '<td class="c unknown">?</td><td class="c yes-declared mismatch">✓v!</td></tr></table>\n'
        f"<ul>{rows}</ul>\n<p>Where a value comes from:</p>\n<ul>{bases}</ul>\n"
        '<p>In plans, <span class="preferred">preferred</span> is the first strategy of the '
        'operation\'s ladder, <span class="fallback">fallback</span> a lower rung and '
        '<span class="unavailable">unavailable</span> means no strategy works. '
        "Hover a cell or an evidence line for the probe's raw words.</p>"
    )


def _matrix(drivers: list[model.DriverReport]) -> str:
    shown = common.known_features(drivers) or list(model.Feature)
    head = "".join(f'<th class="feature" title="{esc(f)}">{esc(f)}</th>' for f in shown)
    rows = [f"<tr><th>driver</th>{head}</tr>"]
    for driver in drivers:
        cells = "".join(_cell(driver.features.get(f)) for f in shown)
        rows.append(f'<tr><th class="driver">{html_plan.label(driver)}</th>{cells}</tr>')
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
    raw = plain.hover(result)
    tip = f"{shown.basis}: {plain.words(shown.evidence)}" if shown.evidence else shown.basis
    tip += f" [{raw}]" if raw else ""
    return f'<td class="c {css}" title="{esc(tip)}">{esc(shown.code)}</td>'


def _evidence(report: model.DriverReport) -> str:
    rows = ["<tr><th>feature</th><th>result</th><th>evidence</th><th>seconds</th></tr>"]
    for feature in model.Feature:
        result = report.features.get(feature)
        seconds = f"{result.seconds:.3f}" if result else ""
        rows.append(
            f"<tr><td>{esc(feature)}</td>{_cell(result)}{_evidence_cell(result)}"
            f"<td>{seconds}</td></tr>"
        )
    return "<table>\n" + "\n".join(rows) + "\n</table>"


def _evidence_cell(result: model.FeatureResult | None) -> str:
    """Plain words shown; the probe's raw line on hover when it differs."""
    if result is None:
        return "<td>not reported</td>"
    raw = plain.hover(result)
    title = f' title="{esc(raw)}"' if raw else ""
    return f'<td class="text"{title}>{esc(plain.words(result.evidence))}</td>'


def _issues(drivers: list[model.DriverReport]) -> list[str]:
    found = common.issues(drivers)
    if not found:
        return []
    # One driver: its name is in the title already.
    named = len(drivers) > 1
    items = "".join(
        "<li>"
        + (f"<b>{esc(label)}</b>: " if named else "")
        + f'<span class="{"error" if is_error else ""}">'
        f"{'error: ' if is_error else ''}{esc(plain.words(text))}</span></li>"
        for label, text, is_error in found
    )
    listing = f"<ul>{items}</ul>"
    if len(found) > _OPEN_ISSUES_UP_TO:
        listing = f"<details><summary>{len(found)} warnings and errors</summary>{listing}</details>"
    return ["<h2>Warnings and errors</h2>", listing]


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
