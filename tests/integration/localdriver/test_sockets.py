"""The driver's CSI socket: a crash's leftover is replaced, a live driver's is never touched."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Iterable

import pytest

from csi_vm.csi.pb import csi_pb2
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _ready(endpoint: str) -> bool:
    """Whether the driver serving `endpoint` answers Probe: ready."""
    stubs = csi.connect(endpoint)
    try:
        return bool(stubs.identity.Probe(csi_pb2.ProbeRequest(), timeout=5).ready.value)
    finally:
        stubs.close()


def _second_start(
    first: driverproc.DriverProcess, args: Iterable[str]
) -> subprocess.CompletedProcess[str]:
    """A driver started with `args` beside `first`: refused; `first`'s socket kept and serving."""
    identity = first.socket_path.stat().st_ino
    done = driverproc.run_to_exit(args)
    assert done.returncode == 2, done.stderr
    assert first.socket_path.stat().st_ino == identity
    assert _ready(first.endpoint)
    return done


def test_a_crashed_drivers_csi_socket_is_replaced(tmp_path: pathlib.Path) -> None:
    drv = driverproc.start_driver(tmp_path / "driver")
    drv.kill()
    assert drv.socket_path.exists()  # SIGKILL: nobody removed it
    drv.start()
    try:
        assert _ready(drv.endpoint)
    finally:
        assert drv.stop() == 0
    assert not drv.socket_path.exists()


def test_a_live_drivers_csi_socket_is_never_taken(
    tmp_path: pathlib.Path,
) -> None:
    first = driverproc.start_driver(tmp_path / "first")
    try:
        done = _second_start(
            first,
            [
                *("--endpoint", first.endpoint),
                *("--state-dir", str(tmp_path / "second-state"), "--node-id", "node-b"),
            ],
        )
        assert "another process is serving" in done.stderr
    finally:
        first.stop()


def test_a_second_start_of_a_running_driver_touches_nothing(tmp_path: pathlib.Path) -> None:
    """The same command line twice: the second exits with one line, the first serves on."""
    first = driverproc.start_driver(tmp_path / "driver")
    try:
        # A file of the first driver's that a start-up would clear (a pause
        # marker): the second must leave its state dir alone.
        marker = first.state_dir / "paused-at-volume-temp"
        marker.write_text("1\n")
        done = _second_start(first, first.args)
        assert done.stderr.strip().splitlines() == [
            f"csi-vm localdriver: error: --endpoint: another process is serving on "
            f"{first.socket_path} (stop it first, or give this driver another socket path)"
        ]
        assert marker.exists(), "the second start cleared the first driver's state dir"
    finally:
        marker.unlink(missing_ok=True)
        first.stop()
