"""The report as Kubernetes storage e2e test driver definitions (testdriver.yaml).

The e2e suite's external driver file has ``StorageClass``, ``SnapshotClass``
and ``DriverInfo: {Name, Capabilities}`` at the top; each capability key is a
boolean and a missing key counts as false. Keys the report cannot decide are
left out and named in a comment, never guessed. One YAML document per driver.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable

import yaml

from capabilities import catalogue, model
from capabilities.render import common

F = model.Feature

Decide = Callable[[model.DriverReport], bool | None]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Key:
    key: str
    source: str  # for the documentation: where the value comes from
    decide: Decide


def known(report: model.DriverReport, feature: model.Feature) -> bool | None:
    """A feature's value as a test suite may rely on it, or None if undecided.

    A verified result decides. Without one, a feature not declared is off; a
    declared one counts only in declared-only and catalogue reports, where
    nothing was tested (in a verified report it means "not attempted").
    """
    result = report.features.get(feature)
    if result is None:
        return None
    if result.verified is not None:
        return result.verified
    if result.declared is False:
        return False
    if result.declared and report.mode != "verified":
        return True
    return None


def _feature(feature: model.Feature) -> Decide:
    return lambda report: known(report, feature)


def _snapshot_source(report: model.DriverReport) -> bool | None:
    # The suite takes the snapshot it restores from, so both steps must work.
    values = {known(report, F.SNAPSHOT), known(report, F.RESTORE_FROM_SNAPSHOT)}
    return False if False in values else (None if None in values else True)


def _undecided(report: model.DriverReport) -> bool | None:
    return None


def _persistence(report: model.DriverReport) -> bool | None:
    if catalogue.ephemeral_only(report):
        return False
    values = {known(report, F.FILESYSTEM), known(report, F.BLOCK)}
    return True if True in values else (False if values == {False} else None)


def _rwx(report: model.DriverReport) -> bool | None:
    """RWX means multi-writer on every volume mode the driver offers."""
    needed = [
        rwx
        for mode, rwx in ((F.FILESYSTEM, F.RWX_FILESYSTEM), (F.BLOCK, F.RWX_BLOCK))
        if known(report, mode) is not False
    ]
    values = {known(report, rwx) for rwx in needed}
    if False in values:
        return False
    return None if None in values or not values else True


def _multipods(report: model.DriverReport) -> bool | None:
    # Multi-writer across nodes implies many pods on one node; the converse is
    # not tested, so a driver without RWX stays undecided.
    writers = {known(report, F.RWX_FILESYSTEM), known(report, F.RWX_BLOCK)}
    return True if True in writers else None


KEYS = (
    Key(
        key="persistence",
        source="`filesystem` or `block` (false for ephemeral-only list rows)",
        decide=_persistence,
    ),
    Key(key="block", source="`block`", decide=_feature(F.BLOCK)),
    Key(
        key="fsGroup",
        source="not decided: set by the CSIDriver fsGroupPolicy, not CSI",
        decide=_undecided,
    ),
    Key(key="exec", source="not decided: depends on mount options", decide=_undecided),
    Key(
        key="snapshotDataSource",
        source="`snapshot` and `restore_from_snapshot`",
        decide=_snapshot_source,
    ),
    Key(key="pvcDataSource", source="`clone`", decide=_feature(F.CLONE)),
    Key(
        key="offlineSnapshotClone",
        source="not decided: snapshots and clones of attached volumes are not probed",
        decide=_undecided,
    ),
    Key(
        key="multipods", source="true when `rwx_filesystem` or `rwx_block` works", decide=_multipods
    ),
    Key(
        key="RWX",
        source="`rwx_filesystem` and `rwx_block` for every volume mode offered",
        decide=_rwx,
    ),
    Key(
        key="controllerExpansion",
        source="`expansion_controller`",
        decide=_feature(F.EXPANSION_CONTROLLER),
    ),
    Key(key="nodeExpansion", source="`expansion_node`", decide=_feature(F.EXPANSION_NODE)),
    Key(key="onlineExpansion", source="`expansion_online`", decide=_feature(F.EXPANSION_ONLINE)),
    Key(key="offlineExpansion", source="`expansion_offline`", decide=_feature(F.EXPANSION_OFFLINE)),
    Key(
        key="volumeLimits",
        source="not decided: per-node volume limits are not probed",
        decide=_undecided,
    ),
    Key(key="singleNodeVolume", source="not decided: not probed", decide=_undecided),
    Key(key="topology", source="`topology`", decide=_feature(F.TOPOLOGY)),
    Key(key="capacity", source="`capacity`", decide=_feature(F.CAPACITY)),
    Key(
        key="readWriteOncePod",
        source="not decided: the access mode is not a report feature",
        decide=_undecided,
    ),
    Key(
        key="capReadOnlyMany",
        source="not decided: the access mode is not a report feature",
        decide=_undecided,
    ),
)


def render(report: common.Report) -> str:
    return "---\n".join(document(d) for d in common.rows(report))


def capabilities(report: model.DriverReport) -> tuple[dict[str, bool], list[str]]:
    """The decided capability keys in suite order, and the undecided ones."""
    decided: dict[str, bool] = {}
    undecided: list[str] = []
    for key in KEYS:
        value = key.decide(report)
        if value is None:
            undecided.append(key.key)
        else:
            decided[key.key] = value
    return decided, undecided


def document(report: model.DriverReport) -> str:
    """One driver's test driver definition, with comments saying what was left out."""
    decided, undecided = capabilities(report)
    if report.error:
        decided, undecided = {}, [k.key for k in KEYS]
    data: dict[str, object] = {"StorageClass": {"FromName": True}}
    if not report.error and known(report, F.SNAPSHOT):
        data["SnapshotClass"] = {"FromName": True}
    name = report.driver.name or report.driver.label
    data["DriverInfo"] = {"Name": name, "Capabilities": decided}
    body: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return _header(report, undecided) + body


def _header(report: model.DriverReport, undecided: list[str]) -> str:
    lines = [
        f"Kubernetes storage e2e driver definition for {report.driver.label}",
        f"from a {report.schema_} report (mode {report.mode}).",
        "StorageClass.FromName uses the driver name as provisioner with no parameters;",
        "use FromFile instead when the driver needs StorageClass parameters.",
    ]
    if report.error:
        lines.append(f"The probe failed, so no capability is claimed: {report.error}")
    if undecided:
        lines.append(
            "Left out, as the report does not decide them (missing means false): "
            + ", ".join(undecided)
        )
    # Driver text may carry newlines; each comment line must stay a comment.
    wrapped = [part for line in lines for part in textwrap.wrap(" ".join(line.split()), 96)]
    return "".join(f"# {part}\n" for part in wrapped)
