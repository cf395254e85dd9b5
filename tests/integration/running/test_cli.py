"""The running-VM commands from the command line, on the counter guest."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import Lab, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(180)]


def _cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CSI_VM_CONFIG": str(lab.tmp / "config.yaml"),
        "CSI_VM_DB": str(lab.tmp / "csi-vm.db"),
        "CSI_VM_STATE_DIR": str(lab.tmp / "state"),
    }
    return subprocess.run(
        [sys.executable, "-m", "csi_vm", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_start_status_console_online_snapshot_stop(lab: Lab) -> None:
    lab.create_vm("cli-vm")
    started = _cli(lab, "vm", "start", "cli-vm", "--counter-guest", "-o", "json")
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["state"] == "running"
    wait_for_counter(lab.device("cli-vm", node="node-a"), above=2, within=60)

    status = _cli(lab, "vm", "status", "cli-vm", "-o", "json")
    assert json.loads(status.stdout)["node"] == "node-a", status.stderr
    listed = json.loads(_cli(lab, "vm", "list", "-o", "json").stdout)
    assert [v["running_on"] for v in listed if v["name"] == "cli-vm"] == ["node-a"]
    console = _cli(lab, "vm", "console", "cli-vm", "--lines", "0")
    assert "CSIVMCTR start from 0" in console.stdout
    snap = _cli(lab, "snapshot", "create", "cli-vm", "--name", "cli-snap", "-o", "json")
    assert snap.returncode == 0, snap.stderr
    assert "crash-consistent" in json.loads(snap.stdout)["detail"]
    refused = _cli(lab, "vm", "delete", "cli-vm")
    assert refused.returncode == 2 and "stop" in refused.stderr

    planned = _cli(lab, "vm", "stop", "cli-vm", "--dry-run")
    assert planned.returncode == 0 and "csi-unpublish" in planned.stdout, planned.stderr
    assert (
        json.loads(_cli(lab, "vm", "status", "cli-vm", "-o", "json").stdout)["state"] == "running"
    )
    stopped = _cli(lab, "vm", "stop", "cli-vm", "--grace", "0")
    assert stopped.returncode == 0, stopped.stderr
    after = _cli(lab, "vm", "status", "cli-vm")  # as virsh: "shut off" is an answer, exit 0
    assert after.returncode == 0 and "shut off" in after.stdout, after.stderr
