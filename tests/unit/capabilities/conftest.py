"""Reports for the capability renderer and schema tests.

The catalogue report is built from ``data/drivers-table.md``, a driver table
the project writes itself in the public list's format, with invented rows that
are irregular in every way the parser copes with. The public list of CSI
drivers is not the project's text: it lives beside the repository
(``../shared/data``, or where ``CSI_VM_PUBLIC_DRIVER_LIST`` points), and the
tests of its own figures skip, naming the file, where it is absent. The
synthetic reports cover what a catalogue never has: verified results,
mismatches, inferred sharing, failed probes and hostile driver text.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from capabilities import catalogue, ladder, model

F = model.Feature
R = model.FeatureResult

REPO = Path(__file__).resolve().parents[3]
DRIVER_TABLE = Path(__file__).resolve().parent / "data" / "drivers-table.md"
PUBLIC_LIST = Path(
    os.environ.get(
        "CSI_VM_PUBLIC_DRIVER_LIST",
        REPO.parent / "shared" / "data" / "csi-drivers-2024-11.md",
    )
)

HOSTILE = '<script>alert("x")</script> | **bold** [link](http://evil.example) & `tick`'


def fixed_clock() -> datetime.datetime:
    return datetime.datetime(2024, 11, 6, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="session")
def driver_list_text() -> str:
    """The project's own driver table: invented rows, the public list's format."""
    return DRIVER_TABLE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def catalogue_report(driver_list_text: str) -> model.MatrixReport:
    return catalogue.report(driver_list_text, clock=fixed_clock)


@pytest.fixture(scope="session")
def public_list_text() -> str:
    """The public CSI driver list, for tests of its own figures.

    A clone of the repository has no ``../shared``; those tests skip there.
    """
    if not PUBLIC_LIST.is_file():
        pytest.skip(
            f"public CSI driver list {PUBLIC_LIST} not found: it is kept beside the "
            "repository, not in it (set CSI_VM_PUBLIC_DRIVER_LIST to its path)"
        )
    return PUBLIC_LIST.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def public_report(public_list_text: str) -> model.MatrixReport:
    return catalogue.report(public_list_text, clock=fixed_clock)


def _report(
    *,
    label: str,
    mode: str = "verified",
    features: dict[model.Feature, model.FeatureResult],
    warnings: tuple[str, ...] = (),
    asserted: frozenset[model.Feature] = frozenset(),
) -> model.DriverReport:
    return model.DriverReport(
        driver=model.DriverInfo(
            label=label,
            endpoint=f"unix:///run/{label}.sock",
            name=f"{label}.csi.example.com",
            vendor_version="1.0.0",
        ),
        mode=mode,
        features=features,
        declared={"controller": ["CREATE_DELETE_VOLUME", "CREATE_DELETE_SNAPSHOT"]},
        plan=ladder.plan(features, trust_declared=mode != "verified", asserted=asserted),
        warnings=list(warnings),
        seconds=1.25,
    )


def _all(verified: bool) -> dict[model.Feature, model.FeatureResult]:
    return {
        f: R(declared=True, verified=verified, evidence=f"{f} exercised", seconds=0.01) for f in F
    }


def full_report() -> model.DriverReport:
    """Everything declared and verified, sharing verified across two nodes."""
    return _report(label="full", features=_all(True))


def limited_report() -> model.DriverReport:
    """Mismatches both ways, inferred sharing, untested node features."""
    features = _all(True)
    features |= {
        F.SNAPSHOT: R(
            declared=True, verified=False, evidence="CreateSnapshot: INTERNAL: refused", seconds=0.2
        ),
        F.CLONE: R(declared=False, evidence="CLONE_VOLUME not declared; not attempted"),
        F.EXPANSION_CONTROLLER: R(
            declared=False, verified=True, evidence="ControllerExpandVolume worked", seconds=0.03
        ),
        F.MULTI_NODE_SHARED: R(
            declared=True,
            inferred=False,
            evidence="accessible_topology pins the volume to node-a",
        ),
        F.EXPANSION_NODE: R(declared=True, evidence="no node endpoint given"),
        F.RWX_BLOCK: R(declared=True, verified=False, evidence="MULTI_NODE_MULTI_WRITER refused"),
    }
    warnings = (
        "snapshot is declared but failed: CreateSnapshot: INTERNAL: refused",
        "expansion_controller works but is not declared",
    )
    return _report(label="limited", features=features, warnings=warnings)


def declared_only_report() -> model.DriverReport:
    features = {f: R(declared=f not in {F.CLONE, F.BLOCK}, evidence="from capabilities") for f in F}
    return _report(label="declared", mode="declared-only", features=features)


def failed_report() -> model.DriverReport:
    return model.DriverReport(
        driver=model.DriverInfo(label="hung", endpoint="unix:///run/hung.sock"),
        mode="verified",
        error="probe timed out after 30 s: the endpoint did not answer GetPluginInfo",
        seconds=30.0,
    )


def hostile_report() -> model.DriverReport:
    features = _all(True)
    features[F.SNAPSHOT] = R(declared=True, verified=False, evidence=HOSTILE)
    return _report(label=HOSTILE, features=features, warnings=(HOSTILE,))


def synthetic_matrix() -> model.MatrixReport:
    rows = [full_report(), limited_report(), declared_only_report(), failed_report()]
    return model.MatrixReport(
        kind="matrix",
        generated_at=fixed_clock().isoformat(),
        rows=rows,
        totals=catalogue.totals(rows),
    )


SYNTHETIC: dict[str, Callable[[], model.DriverReport | model.MatrixReport]] = {
    "full": full_report,
    "limited": limited_report,
    "declared-only": declared_only_report,
    "failed": failed_report,
    "hostile": hostile_report,
    "matrix": synthetic_matrix,
}


@pytest.fixture
def limited() -> model.DriverReport:
    return limited_report()


@pytest.fixture
def hostile() -> model.DriverReport:
    return hostile_report()


@pytest.fixture
def matrix() -> model.MatrixReport:
    return synthetic_matrix()


@pytest.fixture(params=["catalogue", *sorted(SYNTHETIC)], ids=["catalogue", *sorted(SYNTHETIC)])
def any_report(
    request: pytest.FixtureRequest, catalogue_report: model.MatrixReport
) -> model.DriverReport | model.MatrixReport:
    if request.param == "catalogue":
        return catalogue_report
    report: model.DriverReport | model.MatrixReport = SYNTHETIC[request.param]()
    return report
