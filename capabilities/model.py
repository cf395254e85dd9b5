"""The capability report: what a driver declares, what a probe verified, the plan.

The JSON form of these models is the documented, versioned report schema
(``capabilities/schema/report-v1.json``); change both together and bump
`SCHEMA` when a change is not backwards compatible.
"""

from __future__ import annotations

import pydantic

# The feature keys live apart, free of pydantic (`--help` lists them), and
# are re-exported: model.Feature is the name the code base uses.
from capabilities.features import Basis as Basis  # noqa: PLC0414
from capabilities.features import Feature as Feature  # noqa: PLC0414

SCHEMA = "csi-vm.capabilities/v1"


class Frozen(pydantic.BaseModel):
    # defer_build: a model's validator is built when it first validates, not
    # at import, which every capabilities command (and its --help) pays for.
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)


class FeatureResult(Frozen):
    """One feature of one driver.

    ``declared``/``verified`` are None when not attempted; ``evidence`` then
    says why. ``inferred`` is set when a value was deduced rather than tested
    (cross-node sharing judged from topology).
    """

    declared: bool | None = None
    verified: bool | None = None
    inferred: bool | None = None
    evidence: str = ""
    seconds: float = 0.0

    @property
    def undeclared(self) -> bool:
        """Works, undeclared: the driver answers the feature but does not declare it.

        Kubernetes sidecars never call an undeclared RPC, and nothing promises
        it keeps working, so plans use it only where the operator asserts it.
        """
        return self.declared is False and self.verified is True

    def works(self, *, trust_declared: bool) -> bool:
        """Whether a plan may rely on this feature."""
        if self.verified is not None:
            return self.verified
        return trust_declared and bool(self.declared)


class Choice(Frozen):
    """The strategy picked for one VM operation, and why."""

    strategy: str
    native: bool
    reason: str


class DriverInfo(Frozen):
    label: str
    endpoint: str
    name: str = ""
    vendor_version: str = ""
    node_endpoints: dict[str, str] = {}
    # Catalogue rows only: whether the driver list files it as production-ready.
    # None for probed drivers, where the question does not arise.
    production: bool | None = None


class DriverReport(Frozen):
    """Everything known about one driver (one row of a matrix)."""

    schema_: str = pydantic.Field(default=SCHEMA, alias="schema")
    driver: DriverInfo
    mode: str  # "verified", "declared-only", "catalogue" or "cluster"
    features: dict[Feature, FeatureResult] = {}
    declared: dict[str, list[str]] = {}
    plan: dict[str, Choice] = {}
    warnings: list[str] = []
    error: str | None = None
    seconds: float = 0.0
    # ISO 8601 time the probe finished; None in rows made without a probe.
    generated_at: str | None = None

    model_config = pydantic.ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, defer_build=True
    )


class EcosystemTotals(Frozen):
    """Counts over a driver catalogue: who lacks what, and what csi-vm still offers."""

    drivers: int
    lacking: dict[str, int]
    lacking_percent: dict[str, float]
    offered_by_fallback: dict[str, int]


class MatrixReport(Frozen):
    schema_: str = pydantic.Field(default=SCHEMA, alias="schema")
    kind: str  # "matrix", "catalogue" or "cluster"
    generated_at: str
    rows: list[DriverReport]
    totals: EcosystemTotals | None = None

    model_config = pydantic.ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, defer_build=True
    )


def to_json_dict(report: DriverReport | MatrixReport) -> dict[str, object]:
    """The report as JSON-ready data, with the public key names."""
    data: dict[str, object] = report.model_dump(mode="json", by_alias=True)
    return data
