"""A fan-out on a terminal shows the clones made and the throughput, on one bar."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.integration.fanout.conftest import LADDERS, Lab, make_golden

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _on_terminal(lab: Lab, *args: str) -> tuple[int, str]:
    """Run the real command with stderr on a pseudo-terminal; its exit code and what it drew."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "csi_vm", *args],
        env={**lab.cli_env(), "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    drawn = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command closed its end
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    return proc.wait(timeout=120), drawn.decode(errors="replace")


def test_progress_counts_clones_and_shows_throughput(lab_factory: Callable[..., Lab]) -> None:
    golden = make_golden(lab_factory(LADDERS["host-copy"]))
    code, drawn = _on_terminal(
        golden.lab, "clone", "gold", "--count", "3", "--name-template", "p{i}"
    )
    assert code == 0, drawn
    # The bar's last state is drawn as it closes; earlier ones depend on its refresh rate.
    assert "fan-out of gold | 3/3 clones" in drawn
    assert "B/s" in drawn  # the throughput column
