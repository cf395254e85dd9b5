"""The report as coloured terminal tables (rich), readable at 100 columns.

Up to `TRANSPOSE_UP_TO` drivers, features are rows and drivers columns, with
full feature names. Beyond that (a catalogue), drivers are rows, features get
three-letter heads explained in the caption, and the plan is summarised per
operation instead of listed per driver.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from capabilities import ladder, model
from capabilities.render import common

# Eight drivers (the benchmark matrix) still fit side by side in 100 columns.
TRANSPOSE_UP_TO = 8

_CELL_STYLES = {
    "yes-verified": "bold green",
    "no-verified": "bold red",
    "yes-declared": "green",
    "no-declared": "red",
    "yes-inferred": "italic green",
    "no-inferred": "italic red",
    "unknown": "dim",
}
_PLAN_STYLES = {
    common.PREFERRED: "green",
    common.FALLBACK: "yellow",
    common.UNAVAILABLE: "bold red",
}


def renderable(report: common.Report) -> RenderableType:
    """Everything, top to bottom, as one rich renderable."""
    drivers = common.rows(report)
    parts: list[RenderableType] = [Text(common.title(report), style="bold"), _legend()]
    if isinstance(report, model.DriverReport):
        parts += [_details(report), _plan_one(report)]
    elif len(drivers) <= TRANSPOSE_UP_TO:
        parts += [_features_by_row(drivers), _plan_by_row(drivers)]
    else:
        parts += [_drivers_by_row(drivers), _plan_summary(drivers)]
    parts += _issues(drivers)
    found = common.totals(report)
    if found is not None:
        parts.append(_totals(found))
    return Group(*parts)


def show(report: common.Report, console: Console) -> None:
    """Print the report on ``console`` (colours as the console supports them)."""
    console.print(renderable(report))


def to_text(report: common.Report, *, width: int = 100, color: bool = False) -> str:
    """The rendered tables as a string, with ANSI colours only if ``color``."""
    console = Console(
        file=io.StringIO(),
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        legacy_windows=False,
    )
    with console.capture() as captured:
        show(report, console)
    return captured.get()


def _legend() -> Text:
    text = Text("✓ works  ✗ does not  ? unknown · ", style="dim")
    text.append("v", style="bold")
    text.append(" verified  ", style="dim")
    text.append("d", style="bold")
    text.append(" declared  ", style="dim")
    text.append("i", style="bold")
    text.append(" inferred · ! declared ≠ verified · plan: ", style="dim")
    for kind in (common.PREFERRED, common.FALLBACK, common.UNAVAILABLE):
        text.append(kind + " ", style=_PLAN_STYLES[kind])
    return text


def _cell(result: model.FeatureResult | None) -> Text:
    shown = common.cell(result)
    style = _CELL_STYLES[shown.css] + (" reverse" if shown.mismatch else "")
    return Text(shown.code, style=style)


def _table(*, title: str | None = None, caption: str | None = None) -> Table:
    return Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        caption_justify="left",
        pad_edge=False,
    )


def _details(report: model.DriverReport) -> Table:
    table = _table(title="Features")
    table.add_column("feature", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("decl.", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("evidence", overflow="fold", ratio=1)
    for feature in model.Feature:
        result = report.features.get(feature)
        declared = (
            "-"
            if result is None or result.declared is None
            else ("yes" if result.declared else "no")
        )
        seconds = f"{result.seconds:.2f}" if result else ""
        evidence = common.cell(result).evidence
        table.add_row(str(feature), _cell(result), declared, seconds, Text(evidence))
    return table


def _plan_one(report: model.DriverReport) -> Table:
    table = _table(title="Plan")
    table.add_column("operation", no_wrap=True)
    table.add_column("strategy", no_wrap=True)
    table.add_column("why", overflow="fold", ratio=1)
    for op, choice in report.plan.items():
        table.add_row(op, _strategy(op, choice), Text(choice.reason))
    return table


def _strategy(op: str, choice: model.Choice) -> Text:
    return Text(choice.strategy, style=_PLAN_STYLES[common.plan_kind(op, choice.strategy)])


def _label(driver: model.DriverReport) -> Text:
    style = "red" if driver.error else ("dim" if driver.driver.production is False else "")
    return Text(driver.driver.label, style=style)


def _features_by_row(drivers: list[model.DriverReport]) -> Table:
    table = _table(title="Features")
    table.add_column("feature", no_wrap=True)
    for driver in drivers:
        table.add_column(_label(driver), overflow="fold", justify="center")
    for feature in model.Feature:
        table.add_row(str(feature), *(_cell(d.features.get(feature)) for d in drivers))
    return table


def _plan_by_row(drivers: list[model.DriverReport]) -> Table:
    table = _table(title="Plan")
    table.add_column("operation", no_wrap=True)
    for driver in drivers:
        table.add_column(_label(driver), overflow="fold")
    for op in ladder.OPERATIONS:
        cells = [_strategy(op, d.plan[op]) if op in d.plan else Text("-") for d in drivers]
        table.add_row(op, *cells)
    return table


def _drivers_by_row(drivers: list[model.DriverReport]) -> Table:
    shown = common.known_features(drivers)
    hidden = [str(f) for f in model.Feature if f not in shown]
    caption = " ".join(f"{common.ABBREVIATIONS[f]}={f}" for f in shown)
    if hidden:
        caption += " · unknown for all, not shown: " + ", ".join(hidden)
    table = _table(title="Features", caption=caption)
    table.add_column("driver", overflow="ellipsis", max_width=30, no_wrap=True)
    for feature in shown:
        table.add_column(common.ABBREVIATIONS[feature], justify="center", no_wrap=True)
    for driver in drivers:
        table.add_row(_label(driver), *(_cell(driver.features.get(f)) for f in shown))
    return table


def _plan_summary(drivers: list[model.DriverReport]) -> Table:
    table = _table(title=f"Plan over {len(drivers)} drivers")
    table.add_column("operation", no_wrap=True)
    table.add_column("drivers per strategy", ratio=1)
    for op, counts in common.plan_summary(drivers).items():
        line = Text()
        for strategy, count in counts:
            kind = common.plan_kind(op, strategy)
            line.append(f"{strategy} ", style=_PLAN_STYLES[kind])
            line.append(f"{count}   ")
        table.add_row(op, line)
    return table


def _issues(drivers: list[model.DriverReport]) -> list[RenderableType]:
    found = common.issues(drivers)
    if not found:
        return []
    table = _table(title="Warnings and errors")
    table.add_column("driver", overflow="fold", max_width=30)
    table.add_column("", overflow="fold", ratio=1)
    for label, text, is_error in found:
        style = "red" if is_error else "yellow"
        table.add_row(Text(label), Text(("error: " if is_error else "") + text, style=style))
    return [table]


def _totals(found: model.EcosystemTotals) -> Table:
    table = _table(title=f"Totals over {found.drivers} drivers", caption=common.TOTALS_NOTE)
    table.add_column("lacking")
    table.add_column("drivers", justify="right")
    table.add_column("share", justify="right")
    table.add_column("VM operation")
    table.add_column("still offered by a fallback", justify="right")
    for line in common.gap_lines(found):
        table.add_row(
            line.title, str(line.lacking), f"{line.percent:.1f}%", line.operation, str(line.offered)
        )
    return table
