"""The plan part of the HTML page: what an administrator acts on, so it comes first.

One driver: a table of operation, strategy and why. A few drivers: one table,
operations down and drivers across, the reason on hover. A catalogue: how
many drivers get each strategy. Per-driver details with every reason come
further down the page for matrices.
"""

from __future__ import annotations

import html

from capabilities import ladder, model
from capabilities.render import common

# Drivers side by side in one plan table: eight still fit 1366 pixels.
SIDE_BY_SIDE_UP_TO = 8


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def plan(report: common.Report) -> str:
    """The plan section for the top of the page."""
    drivers = common.rows(report)
    if isinstance(report, model.DriverReport):
        return '<h2 id="plan">Plan</h2>\n' + one(report)
    few = len(drivers) <= SIDE_BY_SIDE_UP_TO
    body = _side_by_side(drivers) if few else _summary(drivers)
    return (
        '<h2 id="plan">Plan</h2>\n'
        '<p class="note">Strategy per VM operation; hover a strategy for why, or see '
        '<a href="#plan-details">the details</a>.</p>\n' + body
    )


def one(driver: model.DriverReport) -> str:
    """One driver's plan with every reason; its error instead when the probe failed."""
    if driver.error:
        return f'<p class="error">no plan: the probe failed: {esc(driver.error)}</p>'
    rows = ["<tr><th>operation</th><th>strategy</th><th>why</th></tr>"]
    for op in ladder.OPERATIONS:
        choice = driver.plan.get(op)
        if choice is not None:
            rows.append(
                f"<tr><td>{esc(op)}</td>{_strategy(op, choice, tip=False)}"
                f'<td class="text">{esc(choice.reason)}</td></tr>'
            )
    return '<table class="plan">\n' + "\n".join(rows) + "\n</table>"


def details(drivers: list[model.DriverReport]) -> str:
    """Every driver's plan with its reasons, opened when there are few."""
    opened = " open" if len(drivers) <= SIDE_BY_SIDE_UP_TO else ""
    items = "\n".join(
        f"<details{opened}><summary>{label(d)}</summary>\n{one(d)}</details>" for d in drivers
    )
    return '<h2 id="plan-details">Plan details</h2>\n' + items


def label(driver: model.DriverReport) -> str:
    text = esc(driver.driver.label)
    if driver.error:
        return f'{text} <span class="error">(error)</span>'
    if driver.driver.production is False:
        return f'{text} <span class="note">(non-production)</span>'
    return text


def _strategy(op: str, choice: model.Choice, *, tip: bool) -> str:
    kind = common.plan_kind(op, choice.strategy)
    title = f' title="{esc(choice.reason)}"' if tip else ""
    return f'<td class="{kind}"{title}>{esc(choice.strategy)} ({kind})</td>'


def _side_by_side(drivers: list[model.DriverReport]) -> str:
    head = "".join(f'<th class="driver">{label(d)}</th>' for d in drivers)
    rows = [f"<tr><th>operation</th>{head}</tr>"]
    for index, op in enumerate(ladder.OPERATIONS):
        cells = "".join(_cell(op, d, first=index == 0) for d in drivers)
        rows.append(f"<tr><td>{esc(op)}</td>{cells}</tr>")
    return '<table class="plan">\n' + "\n".join(rows) + "\n</table>"


def _cell(op: str, driver: model.DriverReport, *, first: bool) -> str:
    if driver.error:
        if not first:
            return ""
        # One cell down the whole column: the probe failed, so no operation has a plan.
        span, why = len(ladder.OPERATIONS), esc(driver.error)
        return f'<td class="error" rowspan="{span}" title="{why}">no plan: the probe failed</td>'
    choice = driver.plan.get(op)
    if choice is None:
        return '<td class="note">—</td>'
    return _strategy(op, choice, tip=True)


def _summary(drivers: list[model.DriverReport]) -> str:
    rows = ["<tr><th>operation</th><th>drivers per strategy</th></tr>"]
    for op, counts in common.plan_summary(drivers).items():
        parts = ", ".join(
            f'<span class="{common.plan_kind(op, s)}">{esc(s)}</span> {n}' for s, n in counts
        )
        rows.append(f"<tr><td>{esc(op)}</td><td>{parts}</td></tr>")
    failed = sum(1 for d in drivers if d.error)
    note = (
        f'<p class="error">{failed} drivers have no plan: their probe failed.</p>' if failed else ""
    )
    return '<table class="plan">\n' + "\n".join(rows) + "\n</table>" + note
