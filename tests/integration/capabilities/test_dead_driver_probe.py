"""`capabilities probe` of a driver that is down, as a person runs it: a short error, exit 4.

The driver is real and killed with SIGKILL, its socket file left behind.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from tests.support import driverproc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_probe_of_a_dead_driver_is_a_short_error(tmp_path: pathlib.Path) -> None:
    drv = driverproc.start_driver(tmp_path / "dead")
    drv.kill()
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", "capabilities", "probe", "-e", drv.endpoint],
        env={**os.environ, "CSI_VM_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 4, done.stderr
    assert done.stdout == "", "a table of features that were never tried"
    lines = done.stderr.strip().splitlines()
    assert len(lines) <= 3, done.stderr
    assert lines[0].startswith(f"error: cannot probe {drv.endpoint}: ")
    assert done.stderr.count("UNAVAILABLE") == 1, done.stderr
    assert "hint: start the driver" in done.stderr
