"""`csi-vm node-agent run` as a process against the fake API server (a fake, not a cluster).

The path the chart's DaemonSet takes: kubeconfig, list and watch, a VM of
its node started (on libvirt's in-process test driver, so nothing boots),
status written, and a clean stop on SIGTERM that leaves guests running.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from csi_vm.agent import state
from csi_vm.controller import context
from csi_vm.crd import kinds
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE, TEST_URI, provision, read, vm_on

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _wait(check: Callable[[], bool], *, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from csi_vm.cli.main import run; run()", "node-agent", *args]


def test_fake_api_agent_run_starts_a_vm_and_stops_cleanly(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent, tmp_path: pathlib.Path
) -> None:
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web")  # the claim bound and published under agent.kubelet_dir
    cmd = _cli(
        "run", "--node", NODE, "--kubeconfig", str(fake.kubeconfig(tmp_path / "kubeconfig")),
        "--libvirt-uri", TEST_URI, "--kubelet-dir", str(agent.kubelet_dir),
        "--state-dir", str(tmp_path / "agent-state"), "--resync", "2",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: (read(ctx, kinds.VM, "web").get("status") or {}).get("phase") == "Running")
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert read(ctx, kinds.VM, "web")["status"]["nodeName"] == NODE


def test_fake_api_agent_run_refuses_a_malformed_peer_uri() -> None:
    done = subprocess.run(
        _cli("run", "--node", NODE, "--peer-uri", "no-equals-sign"),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "expected NODE=URI" in done.stderr


def test_fake_api_agent_run_help_explains_the_node_side() -> None:
    # Wide enough that rich wraps no phrase of the help text.
    env = {**os.environ, "COLUMNS": "300"}
    done = subprocess.run(
        _cli("run", "--help"), capture_output=True, text=True, timeout=30, check=False, env=env
    )
    assert done.returncode == 0
    for words in ("holder Pod", "--peer-uri-template", "volumeDevices", "spec.running"):
        assert words in done.stdout
