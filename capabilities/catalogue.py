"""The public CSI driver list as capability report rows, plus ecosystem totals.

The kubernetes-csi documentation keeps a markdown list of CSI drivers with the
features their authors advertise. Industry figures ("N% of drivers lack
snapshots") are computed from it; `totals` computes them the same way and adds
what matters here: for how many of those drivers csi-vm still offers each VM
operation through a fallback rung of the strategy ladder.

Rows are declared-only (mode "catalogue"): nothing in the list was tested.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import re
from collections.abc import Callable, Iterable

from capabilities import catalogue_cells, ladder, mdtable, model
from csi_vm import errors

F = model.Feature

_NON_PRODUCTION = re.compile(r"non[- ]?production")
# Keys for a row's own words in `DriverReport.declared`, by header wording.
_DECLARED_KEYS = (
    ("csi driver name", "csi_driver_name"),
    ("version", "csi_versions"),
    ("persistence", "persistence"),
    ("access mode", "access_modes"),
    ("provisioning", "dynamic_provisioning"),
    ("features", "other_features"),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Gap:
    """A feature many drivers lack, and the VM operation that depends on it."""

    key: str
    title: str
    features: tuple[model.Feature, ...]  # lacking means none of these works
    operation: str


GAPS = (
    Gap(key="snapshot", title="Snapshot", features=(F.SNAPSHOT,), operation="vm_snapshot"),
    Gap(
        key="rwx",
        title="ReadWriteMany",
        features=(F.RWX_FILESYSTEM, F.RWX_BLOCK),
        operation="live_migration",
    ),
    Gap(
        key="expansion",
        title="Expansion",
        features=(F.EXPANSION_CONTROLLER,),
        operation="disk_expand",
    ),
    Gap(key="clone", title="Cloning", features=(F.CLONE,), operation="vm_clone"),
    Gap(key="block", title="Raw block", features=(F.BLOCK,), operation="disk_import"),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Columns:
    name: int
    driver: int | None
    persistence: int | None
    access: int | None
    other: int | None


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def report_from_file(
    path: pathlib.Path, *, clock: Callable[[], datetime.datetime] = _utc_now
) -> model.MatrixReport:
    """Read a driver list file into a catalogue report."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise errors.InvalidInput(
            f"cannot read CSI driver list {path}: {err.strerror or err}"
        ) from err
    except UnicodeDecodeError as err:
        raise errors.InvalidInput(f"CSI driver list {path} is not UTF-8 text") from err
    return report(text, clock=clock)


def report(text: str, *, clock: Callable[[], datetime.datetime] = _utc_now) -> model.MatrixReport:
    """A catalogue matrix: one row per listed driver, with totals."""
    rows = parse(text)
    return model.MatrixReport(
        kind="catalogue",
        generated_at=clock().isoformat(timespec="seconds"),
        rows=rows,
        totals=totals(rows),
    )


def parse(text: str) -> list[model.DriverReport]:
    """Rows of every driver table in a driver list, each with its plan."""
    found = [(t, c) for t in mdtable.tables(text) if (c := _columns(t)) is not None]
    if not any(c.other is not None and t.rows for t, c in found):
        raise errors.InvalidInput(
            "no CSI driver table found: expected a markdown table with "
            "'Name' and 'Other Features' columns and at least one row",
            hint="pass the drivers page of the kubernetes-csi documentation",
        )
    return [_row(table, row, columns=columns) for table, columns in found for row in table.rows]


def totals(rows: Iterable[model.DriverReport]) -> model.EcosystemTotals:
    """Who lacks each gap feature, and for how many csi-vm still has a fallback.

    Counts production rows only (rows flagged non-production are samples and
    prototypes), and skips rows whose probe failed: they say nothing about
    features. A feature counts as lacking when the report does not show it
    working: for declared-only rows, when it is not advertised.
    """
    counted = [r for r in rows if r.driver.production is not False and r.error is None]
    lacking = {gap.key: [r for r in counted if _lacks(r, gap)] for gap in GAPS}
    return model.EcosystemTotals(
        drivers=len(counted),
        lacking={key: len(found) for key, found in lacking.items()},
        lacking_percent={key: _percent(len(found), len(counted)) for key, found in lacking.items()},
        offered_by_fallback={
            gap.key: sum(_by_fallback(r, gap.operation) for r in lacking[gap.key]) for gap in GAPS
        },
    )


def _lacks(row: model.DriverReport, gap: Gap) -> bool:
    trust = row.mode != "verified"
    results = (row.features.get(f, model.FeatureResult()) for f in gap.features)
    return not any(r.works(trust_declared=trust) for r in results)


def _by_fallback(row: model.DriverReport, operation: str) -> bool:
    """Whether the plan offers ``operation`` by a rung below the first."""
    choice = row.plan.get(operation)
    first = ladder.LADDERS[operation][0].strategy
    return choice is not None and choice.strategy not in {first, "unavailable"}


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _columns(table: mdtable.Table) -> _Columns | None:
    name = table.column("name", exact=True)
    if name is None:
        return None
    return _Columns(
        name=name,
        driver=table.column("csi driver name", "driver name"),
        persistence=table.column("persistence"),
        access=table.column("access mode"),
        other=table.column("other features", "features"),
    )


def _row(table: mdtable.Table, row: mdtable.Row, *, columns: _Columns) -> model.DriverReport:
    def cell(index: int | None) -> str | None:
        return None if index is None else row.cells[index]

    where = table.heading or "unnamed"
    features, unknown = catalogue_cells.features(
        other=cell(columns.other), access=cell(columns.access), where=where
    )
    production = _is_production(table.heading)
    info = model.DriverInfo(
        label=mdtable.clean(row.cells[columns.name]) or f"(unnamed, line {row.line})",
        endpoint="",
        name=_driver_name(cell(columns.driver)),
        production=production,
    )
    return model.DriverReport(
        driver=info,
        mode="catalogue",
        features=features,
        declared=_declared(table, row),
        plan=ladder.plan(features, trust_declared=True),
        warnings=_warnings(
            table=table, row=row, info=info, unknown=unknown, persistence=cell(columns.persistence)
        ),
    )


def _is_production(heading: str) -> bool:
    """Tables under a "Production" heading, or under none, list production drivers."""
    lowered = heading.lower()
    if not lowered:
        return True
    return "production" in lowered and not _NON_PRODUCTION.search(lowered)


def _driver_name(cell: str | None) -> str:
    name = mdtable.clean(cell or "")
    # The list writes "?" where the driver name is unknown.
    return "" if name in {"?", "-", "N/A"} else name


def ephemeral_only(report: model.DriverReport) -> bool:
    """Whether a catalogue row says its volumes live only as long as their pod."""
    words = report.declared.get("persistence", [])
    return bool(words) and not any("persist" in w.lower() for w in words)


def _declared(table: mdtable.Table, row: mdtable.Row) -> dict[str, list[str]]:
    """The row's own words, column by column, for readers who want the source."""
    declared: dict[str, list[str]] = {}
    for header, cell in zip(table.header, row.cells, strict=True):
        key = _declared_key(mdtable.clean(header))
        if key in {"name", "description"}:
            continue
        declared[key] = (
            catalogue_cells.items(cell) if key == "other_features" else [mdtable.clean(cell)]
        )
    return declared


def _declared_key(header: str) -> str:
    """A stable key for a column: the known ones by meaning, others as a slug."""
    lowered = header.lower()
    for part, key in _DECLARED_KEYS:
        if part in lowered:
            return key
    return "_".join(re.findall(r"[a-z0-9]+", lowered)) or "column"


def _warnings(
    *,
    table: mdtable.Table,
    row: mdtable.Row,
    info: model.DriverInfo,
    unknown: list[str],
    persistence: str | None,
) -> list[str]:
    warnings: list[str] = []
    if not info.production:
        warnings.append(f"listed under {table.heading!r}, not as a production driver")
    if persistence is not None and "persist" not in mdtable.clean(persistence).lower():
        warnings.append(
            f"Persistence is {mdtable.clean(persistence)!r}: volumes do not outlive their pod, "
            "so VM disks cannot live on this driver"
        )
    if not info.name and table.column("csi driver name", "driver name") is not None:
        warnings.append("the list gives no CSI driver name")
    words = ", ".join(t.word for t in catalogue_cells.VOCABULARY)
    warnings += [f"Other Features entry {u!r} is not one of {words}; ignored" for u in unknown]
    if row.surplus:
        warnings.append(f"line {row.line} has more cells than the header; ignored {row.surplus!r}")
    return warnings
