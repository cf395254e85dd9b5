"""A driver that is down: the report still comes out whole, and the exit code says 4.

The dead endpoint is real: a local driver killed with SIGKILL, its socket file
left behind as a crashed driver leaves it, so the probe meets a refused
connection rather than a missing path.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from capabilities import schema as report_schema
from tests.support import driverproc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

#: csi_vm/cli/main.py: "a driver or service did not answer (down, hung)"
DID_NOT_ANSWER = 4


@pytest.fixture
def live(tmp_path: pathlib.Path) -> Iterator[driverproc.DriverProcess]:
    drv = driverproc.start_driver(tmp_path / "live")
    yield drv
    drv.stop()


@pytest.fixture
def dead(tmp_path: pathlib.Path) -> str:
    drv = driverproc.start_driver(tmp_path / "dead")
    drv.kill()
    assert drv.socket_path.exists(), "a killed driver leaves its socket file"
    return drv.endpoint


def _cli(args: list[str], state: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CSI_VM_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "csi_vm", "capabilities", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def test_matrix_with_a_dead_driver_exits_4(
    live: driverproc.DriverProcess, dead: str, tmp_path: pathlib.Path
) -> None:
    args = ["matrix", "-e", f"up={live.endpoint}", "-e", f"down={dead}", "--declared-only"]
    done = _cli([*args, "-o", "json"], tmp_path / "state")
    assert done.returncode == DID_NOT_ANSWER, done.stderr
    report = json.loads(done.stdout)
    report_schema.validate(report)
    rows = {row["driver"]["label"]: row for row in report["rows"]}
    assert rows["up"]["error"] is None and rows["up"]["plan"]
    assert rows["down"]["error"], "the dead driver's row says why"


def test_matrix_of_live_drivers_exits_0(
    live: driverproc.DriverProcess, tmp_path: pathlib.Path
) -> None:
    done = _cli(["matrix", "-e", f"up={live.endpoint}", "--declared-only", "-o", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"][0]["error"] is None


def test_probe_of_a_dead_driver_exits_4(dead: str, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "report.html"
    done = _cli(
        ["probe", "-e", dead, "--declared-only", "-o", "html", "--output-file", str(out)], tmp_path
    )
    assert done.returncode == DID_NOT_ANSWER, done.stderr
    # The report is written all the same, with the error shown.
    assert 'class="error"' in out.read_text(encoding="utf-8")
