"""A probe stopped by SIGINT, SIGTERM or kill -9 leaves nothing behind (after cleanup).

Runs the real `csi-vm capabilities probe` command against the real local driver.
"""

from __future__ import annotations

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

from csi_vm.csi import client as csi_client
from tests.support import driverproc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# Fixed seed: "random points" that are the same on every run, so a failure
# can be reproduced. Delays count from the moment the probe starts creating
# (its journal appears); a full probe of the local driver takes about 0.4 s,
# so the spread covers creates, node I/O, snapshots, expansion and cleanup.
_DELAYS = random.Random(20261128).sample([x / 100 for x in range(0, 45, 3)], 6)


def _wait_for_journal(state: pathlib.Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while not list((state / "probe-journals").glob("*.jsonl")):
        assert proc.poll() is None, "probe ended before it created anything"
        assert time.monotonic() < deadline, "probe never started creating"
        time.sleep(0.005)


def _inventory(endpoint: str) -> tuple[set[str], set[str]]:
    with csi_client.Client(endpoint) as c:
        return (
            {e.volume.volume_id for e in c.list_volumes()},
            {s.snapshot_id for s in c.list_snapshots()},
        )


def _cli(args: list[str], state: pathlib.Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CSI_VM_STATE_DIR": str(state)}
    return subprocess.Popen(
        [sys.executable, "-m", "csi_vm", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _mounts_under(path: pathlib.Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as stream:
        return [line for line in stream if str(path) in line]


@pytest.mark.parametrize(
    ("signum", "delay"),
    [(signal.SIGINT, d) for d in _DELAYS[:3]] + [(signal.SIGTERM, d) for d in _DELAYS[3:]],
    ids=lambda v: v.name if isinstance(v, signal.Signals) else f"{v:.2f}s",
)
def test_signal_mid_probe_leaves_nothing(
    signum: signal.Signals, delay: float, tmp_path: pathlib.Path
) -> None:
    drv = driverproc.start_driver(tmp_path)
    try:
        before = _inventory(drv.endpoint)
        state = tmp_path / "state"
        proc = _cli(["capabilities", "probe", "--endpoint", drv.endpoint, "-o", "json"], state)
        _wait_for_journal(state, proc)
        time.sleep(delay)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 130), err.decode()
        assert _inventory(drv.endpoint) == before
    finally:
        drv.stop()


@pytest.mark.parametrize("delay", _DELAYS[:3], ids=lambda d: f"{d:.2f}s")
def test_cleanup_after_kill_9(delay: float, tmp_path: pathlib.Path) -> None:
    drv = driverproc.start_driver(tmp_path)
    state = tmp_path / "state"
    try:
        before = _inventory(drv.endpoint)
        proc = _cli(["capabilities", "probe", "--endpoint", drv.endpoint, "-o", "json"], state)
        _wait_for_journal(state, proc)
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=30)
        cleanup = _cli(["capabilities", "cleanup", "--endpoint", drv.endpoint], state)
        out, err = cleanup.communicate(timeout=120)
        assert cleanup.returncode == 0, (out + err).decode()
        assert _inventory(drv.endpoint) == before
        assert not list((state / "probe-journals").glob("*.jsonl"))
    finally:
        drv.stop()
