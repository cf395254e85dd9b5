"""Fixtures of the CSI conformance suite.

Point the suite at a driver with ``--csi-endpoint`` (and ``--csi-node-endpoint``
when the node service listens elsewhere). The suite acts as the CO, so it must
run on the node: it creates staging and target paths under
``--csi-staging-dir`` and reads and writes published volumes directly.

Without an endpoint the suite starts the project's local reference driver
itself, once per configuration: ``full`` and ``without-<feature>`` for each
feature the driver can switch off (``--csi-local-config NAME`` picks one). For
those configurations the suite knows what must be offered, so a missing
feature fails instead of being skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import driverproc

from . import caps as caps_mod
from . import ledger as ledger_mod
from . import listing, probes, rpc
from . import target as target_mod

LOCAL_CONFIGS: dict[str, tuple[str, ...]] = {
    "full": (),
    **{f"without-{feature}": (feature,) for feature in target_mod.LOCAL_FEATURES},
}

EXTERNAL = "endpoint"

#: A modification the local driver documents as valid (its "tier" parameter).
LOCAL_MUTABLE_PARAMETERS = {"tier": "fast"}


def _parse_parameters(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise pytest.UsageError(f"--csi-mutable-parameters {text!r}: use KEY=VALUE[,KEY=VALUE]")
    return {key: value for key, value in pairs}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "csi_target" not in metafunc.fixturenames:
        return
    config = metafunc.config
    if config.getoption("--csi-endpoint"):
        names = [EXTERNAL]
        ids = [EXTERNAL]
    else:
        only = config.getoption("--csi-local-config")
        if only is not None and only not in LOCAL_CONFIGS:
            raise pytest.UsageError(
                f"--csi-local-config {only!r}: choose one of {', '.join(LOCAL_CONFIGS)}"
            )
        names = [only] if only else list(LOCAL_CONFIGS)
        ids = [f"local-{name}" for name in names]
    metafunc.parametrize("csi_target", names, ids=ids, indirect=True, scope="session")


@pytest.fixture(scope="session")
def csi_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[target_mod.Target]:
    name: str = request.param
    if name == EXTERNAL:
        endpoint: str = request.config.getoption("--csi-endpoint")
        node_endpoint: str = request.config.getoption("--csi-node-endpoint") or endpoint
        yield target_mod.Target(
            name=EXTERNAL,
            controller_endpoint=endpoint,
            node_endpoint=node_endpoint,
            expected=None,
            mutable_parameters=_parse_parameters(
                request.config.getoption("--csi-mutable-parameters")
            ),
        )
        return
    without = LOCAL_CONFIGS[name]
    process = driverproc.start_driver(tmp_path_factory.mktemp(f"driver-{name}"), without=without)
    try:
        yield target_mod.Target(
            name=f"local-{name}",
            controller_endpoint=process.endpoint,
            node_endpoint=process.endpoint,
            expected=frozenset(target_mod.LOCAL_FEATURES) - set(without),
            mutable_parameters=LOCAL_MUTABLE_PARAMETERS,
            log_path=process.log_path,
        )
    finally:
        process.stop()


@pytest.fixture(scope="session")
def csi(csi_target: target_mod.Target) -> Iterator[rpc.Csi]:
    connection = rpc.connect(csi_target.controller_endpoint, csi_target.node_endpoint)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="session")
def caps(csi: rpc.Csi) -> caps_mod.Caps:
    return caps_mod.discover(csi)


@pytest.fixture(scope="session")
def access_probes(csi: rpc.Csi, caps: caps_mod.Caps) -> dict[str, caps_mod.Probe]:
    """Whether the driver accepts block access and multi-node access modes."""
    return probes.access(csi, caps)


@pytest.fixture(scope="session")
def staging_base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = request.config.getoption("--csi-staging-dir")
    if given:
        return Path(given).absolute()
    return tmp_path_factory.mktemp("csi-paths")


@pytest.fixture
def ledger(csi: rpc.Csi, caps: caps_mod.Caps, staging_base: Path) -> Iterator[ledger_mod.Ledger]:
    """Records what the test creates; at teardown undoes it and checks nothing leaked."""
    lists_volumes = caps.controller_has("LIST_VOLUMES")
    lists_snapshots = caps.controller_has("LIST_SNAPSHOTS")
    volumes_before = listing.list_volume_ids(csi) if lists_volumes else set()
    snapshots_before = listing.list_snapshot_ids(csi) if lists_snapshots else set()
    book = ledger_mod.Ledger(csi, caps, staging_base / uuid.uuid4().hex[:12])
    yield book
    problems = book.cleanup()
    if lists_volumes:
        leaked = listing.list_volume_ids(csi) - volumes_before
        problems += [f"volume {volume_id} still listed after teardown" for volume_id in leaked]
        for volume_id in leaked:  # so that one failure does not spill into later tests
            probes.delete_volume_quietly(csi, volume_id)
    if lists_snapshots:
        leaked = listing.list_snapshot_ids(csi) - snapshots_before
        problems += [
            f"snapshot {snapshot_id} still listed after teardown" for snapshot_id in leaked
        ]
    assert not problems, "teardown found:\n  " + "\n  ".join(problems)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of the local driver's log to a failed test's report."""
    report: pytest.TestReport = yield
    target = getattr(item, "funcargs", {}).get("csi_target")
    if report.failed and isinstance(target, target_mod.Target) and target.log_path:
        try:
            lines = target.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return report
        report.sections.append(("local driver log (last 40 lines)", "\n".join(lines[-40:])))
    return report
