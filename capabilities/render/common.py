"""What every renderer shows, decided once: cell symbols, legend, plan kinds, totals lines.

Renderers only lay these out, so a ✓ means the same in a terminal table, a
markdown file and an HTML page.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime

from capabilities import catalogue, ladder, model

F = model.Feature

Report = model.DriverReport | model.MatrixReport

VERIFIED, DECLARED, INFERRED, UNKNOWN = "verified", "declared", "inferred", "unknown"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cell:
    """How one feature of one driver is shown."""

    value: bool | None
    basis: str  # VERIFIED, DECLARED, INFERRED or UNKNOWN
    mismatch: bool  # declared one way, verified the other
    evidence: str

    @property
    def symbol(self) -> str:
        return "?" if self.value is None else ("✓" if self.value else "✗")

    @property
    def code(self) -> str:
        """Symbol, basis letter and mismatch mark: "✓v", "✗d", "✓v!", "?"."""
        if self.value is None:
            return "?"
        return self.symbol + self.basis[0] + ("!" if self.mismatch else "")

    @property
    def css(self) -> str:
        """A class name: outcome and basis, e.g. "yes-verified", "unknown"."""
        if self.value is None:
            return UNKNOWN
        return ("yes-" if self.value else "no-") + self.basis


LEGEND = (
    ("✓v", "works: a probe used the feature and saw its effect on the node"),
    ("✗v", "does not work: a probe tried it and it failed, was refused or had no effect"),
    ("✓d / ✗d", "declared (or not) by the driver or the driver list; no verification ran"),
    ("✓i / ✗i", "inferred from other evidence, e.g. sharing judged from topology"),
    ("✗v!", "declared but does not work: see the warnings"),
    ("✓v!", "works, undeclared: plans use it only where the config asserts it"),
    ("?", "unknown: not attempted, with the reason in the evidence"),
)

# Short column heads for wide matrices; three letters keep 19 columns in 100.
ABBREVIATIONS = {
    F.SNAPSHOT: "snp",
    F.CLONE: "cln",
    F.RESTORE_FROM_SNAPSHOT: "rst",
    F.EXPANSION_CONTROLLER: "xct",
    F.EXPANSION_NODE: "xnd",
    F.EXPANSION_ONLINE: "xon",
    F.EXPANSION_OFFLINE: "xof",
    F.BLOCK: "blk",
    F.FILESYSTEM: "fs",
    F.RWX_BLOCK: "rwb",
    F.RWX_FILESYSTEM: "rwf",
    F.MULTI_NODE_SHARED: "shr",
    F.STAGE_UNSTAGE: "stg",
    F.TOPOLOGY: "top",
    F.CAPACITY: "cap",
    F.GROUP_SNAPSHOT: "gsn",
    F.SNAPSHOT_METADATA: "smd",
    F.MODIFY_VOLUME: "mod",
    F.VOLUME_STATS: "sts",
}

PREFERRED, FALLBACK, UNAVAILABLE = "preferred", "fallback", "unavailable"


def rows(report: Report) -> list[model.DriverReport]:
    return list(report.rows) if isinstance(report, model.MatrixReport) else [report]


def totals(report: Report) -> model.EcosystemTotals | None:
    return report.totals if isinstance(report, model.MatrixReport) else None


def title(report: Report) -> str:
    """Whose report and when: the driver's CSI name (its label until known), not its socket."""
    when: str | None = report.generated_at
    if isinstance(report, model.MatrixReport):
        head = f"csi-vm capability {report.kind} of {len(report.rows)} drivers"
    else:
        head = f"csi-vm capabilities of {driver_name(report)}"
    return f"{head}, {stamp(when)}" if when else head


def driver_name(report: model.DriverReport) -> str:
    return report.driver.name or report.driver.label


def stamp(iso: str) -> str:
    """An ISO 8601 time as "2024-11-06 12:00 UTC"; text that is not one is shown as it is."""
    try:
        when = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is None:
        return when.strftime("%Y-%m-%d %H:%M")
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def cell(result: model.FeatureResult | None) -> Cell:
    """A verified outcome wins over an inference, which wins over a declaration."""
    if result is None:
        return Cell(value=None, basis=UNKNOWN, mismatch=False, evidence="not reported")
    for value, basis in (
        (result.verified, VERIFIED),
        (result.inferred, INFERRED),
        (result.declared, DECLARED),
    ):
        if value is not None:
            mismatch = (
                basis == VERIFIED and result.declared is not None and (result.declared != value)
            )
            return Cell(value=value, basis=basis, mismatch=mismatch, evidence=result.evidence)
    return Cell(value=None, basis=UNKNOWN, mismatch=False, evidence=result.evidence)


def known_features(drivers: list[model.DriverReport]) -> list[model.Feature]:
    """Features with a value for at least one driver, in report order."""
    return [
        f for f in model.Feature if any(cell(d.features.get(f)).value is not None for d in drivers)
    ]


def plan_kind(operation: str, strategy: str) -> str:
    """PREFERRED for the first rung of the ladder, FALLBACK below it, or UNAVAILABLE."""
    if strategy == "unavailable":
        return UNAVAILABLE
    rungs = ladder.LADDERS.get(operation, ())
    return PREFERRED if rungs and rungs[0].strategy == strategy else FALLBACK


def plan_summary(drivers: list[model.DriverReport]) -> dict[str, list[tuple[str, int]]]:
    """Per operation, how many drivers get each strategy, in ladder order."""
    summary: dict[str, list[tuple[str, int]]] = {}
    for op in ladder.OPERATIONS:
        counts = collections.Counter(d.plan[op].strategy for d in drivers if op in d.plan)
        order = [rung.strategy for rung in ladder.LADDERS[op]] + ["unavailable"]
        ranked = sorted(counts, key=lambda s: order.index(s) if s in order else len(order))
        summary[op] = [(strategy, counts[strategy]) for strategy in ranked]
    return summary


# Why a catalogue's totals count fewer drivers than it has rows.
TOTALS_NOTE = "rows not listed as production drivers and failed probes are not counted"


@dataclasses.dataclass(frozen=True, kw_only=True)
class GapLine:
    title: str
    lacking: int
    percent: float
    operation: str
    offered: int


def gap_lines(found: model.EcosystemTotals) -> list[GapLine]:
    """Totals in the order of `catalogue.GAPS`; unknown keys are skipped."""
    return [
        GapLine(
            title=gap.title,
            lacking=found.lacking[gap.key],
            percent=found.lacking_percent.get(gap.key, 0.0),
            operation=gap.operation,
            offered=found.offered_by_fallback.get(gap.key, 0),
        )
        for gap in catalogue.GAPS
        if gap.key in found.lacking
    ]


def issues(drivers: list[model.DriverReport]) -> list[tuple[str, str, bool]]:
    """(driver label, text, is_error) for every error and warning, errors first."""
    found = [(d.driver.label, d.error, True) for d in drivers if d.error]
    found += [(d.driver.label, w, False) for d in drivers for w in d.warnings]
    return [(label, text, is_error) for label, text, is_error in found if text]
