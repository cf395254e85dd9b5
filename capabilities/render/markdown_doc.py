"""The report as markdown: feature matrix, plan, warnings and totals.

Every text that comes from a driver (names, evidence, errors) is escaped, so
a driver cannot break the tables or inject markup into a rendered page.
"""

from __future__ import annotations

from capabilities import ladder, model
from capabilities.render import common, testdriver

_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "\n": " ",
        "\r": " ",
    }
)


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


def render(report: common.Report) -> str:
    drivers = common.rows(report)
    parts = [f"# {escape(common.title(report))}", _preamble(report), _legend()]
    if isinstance(report, model.DriverReport):
        parts += ["## Features", _feature_details(report), "## Plan", _plan_details(report)]
    else:
        parts += ["## Features", _matrix(drivers), "## Plan", _plan_matrix(drivers)]
    parts += _issues(drivers)
    found = common.totals(report)
    if found is not None:
        parts += ["## Totals", _totals(found)]
    return "\n\n".join(parts) + "\n"


def table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def ladder_table() -> str:
    """The strategy ladders, for the documentation (kept in sync by a test)."""
    body = [
        [
            f"`{op}`" if index == 0 else "",
            str(index + 1),
            f"`{rung.strategy}`",
            ", ".join(f"`{f}`" for f in rung.needs) or "nothing",
            "yes" if rung.native else "no",
            rung.what,
        ]
        for op, rungs in ladder.LADDERS.items()
        for index, rung in enumerate(rungs)
    ]
    return table(["operation", "rung", "strategy", "needs", "native", "what it does"], body)


def testdriver_table() -> str:
    """How report features become e2e test driver keys, for the documentation."""
    body = [[f"`{key.key}`", key.source] for key in testdriver.KEYS]
    return table(["testdriver key", "from the report"], body)


def _preamble(report: common.Report) -> str:
    if isinstance(report, model.MatrixReport):
        return f"Schema `{report.schema_}`, generated {escape(report.generated_at)}."
    info = report.driver
    facts = [f"Schema `{report.schema_}`", f"mode {escape(report.mode)}"]
    facts += [f"driver {escape(info.name)}"] if info.name else []
    facts += [f"version {escape(info.vendor_version)}"] if info.vendor_version else []
    facts += [f"endpoint {escape(info.endpoint)}"] if info.endpoint else []
    return ", ".join(facts) + f", {report.seconds:.2f} s."


def _legend() -> str:
    items = [f"`{code}` {meaning}" for code, meaning in common.LEGEND]
    return "Legend: " + "; ".join(items) + ". In plans, *italics* mark a fallback."


def _feature_details(report: model.DriverReport) -> str:
    body = []
    for feature in model.Feature:
        result = report.features.get(feature)
        shown = common.cell(result)
        body.append(
            [
                f"`{feature}`",
                shown.code,
                _flag(result.declared if result else None),
                _flag(result.verified if result else None),
                _flag(result.inferred if result else None),
                f"{result.seconds:.3f}" if result else "",
                escape(shown.evidence),
            ]
        )
    header = ["feature", "result", "declared", "verified", "inferred", "seconds", "evidence"]
    return table(header, body)


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _matrix(drivers: list[model.DriverReport]) -> str:
    shown = common.known_features(drivers)
    body = [[_label(d)] + [common.cell(d.features.get(f)).code for f in shown] for d in drivers]
    text = table(["driver"] + [f"`{f}`" for f in shown], body)
    hidden = [f"`{f}`" for f in model.Feature if f not in shown]
    if hidden:
        text += "\n\nUnknown for every driver, so not shown: " + ", ".join(hidden) + "."
    return text


def _label(driver: model.DriverReport) -> str:
    label = escape(driver.driver.label)
    if driver.error:
        return label + " (error)"
    return label + (" (non-production)" if driver.driver.production is False else "")


def _plan_details(report: model.DriverReport) -> str:
    body = [
        [
            f"`{op}`",
            _strategy(op, choice),
            common.plan_kind(op, choice.strategy),
            escape(choice.reason),
        ]
        for op, choice in report.plan.items()
    ]
    return table(["operation", "strategy", "kind", "why"], body)


def _plan_matrix(drivers: list[model.DriverReport]) -> str:
    body = [
        [_label(d)]
        + [_strategy(op, d.plan[op]) if op in d.plan else "-" for op in ladder.OPERATIONS]
        for d in drivers
    ]
    return table(["driver"] + [f"`{op}`" for op in ladder.OPERATIONS], body)


def _strategy(op: str, choice: model.Choice) -> str:
    kind = common.plan_kind(op, choice.strategy)
    name = escape(choice.strategy)
    if kind == common.FALLBACK:
        return f"*{name}*"
    return f"**{name}**" if kind == common.UNAVAILABLE else name


def _issues(drivers: list[model.DriverReport]) -> list[str]:
    found = common.issues(drivers)
    if not found:
        return []
    lines = [
        f"- **{escape(label)}**: {'error: ' if is_error else ''}{escape(text)}"
        for label, text, is_error in found
    ]
    return ["## Warnings and errors", "\n".join(lines)]


def _totals(found: model.EcosystemTotals) -> str:
    body = [
        [
            line.title,
            str(line.lacking),
            f"{line.percent:.1f}%",
            f"`{line.operation}`",
            str(line.offered),
        ]
        for line in common.gap_lines(found)
    ]
    header = ["lacking", "drivers", "share", "VM operation", "still offered by a fallback"]
    intro = f"Over {found.drivers} drivers ({common.TOTALS_NOTE})."
    return intro + "\n\n" + table(header, body)
