"""`csi-vm controller run` as a process against the fake API server (a fake, not a cluster).

The whole path the chart's Deployment takes: kubeconfig, Lease, list and
watch, reconcile, /metrics, and a clean stop on SIGTERM that hands the
Lease back.
"""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import pytest

from csi_vm.controller import context, leader
from tests.support import fakekube
from tests.support import vmobjects as v
from tests.unit.controller import conftest

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(check: Callable[[], bool], *, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def _vm_status(fake: fakekube.FakeKube) -> dict:  # type: ignore[type-arg]
    res = next(r for r in conftest.EXTRA if r.plural == "csivms")
    return fake.store.get(res, v.NS, "web").get("status") or {}


def test_controller_run_reconciles_serves_metrics_and_stops_cleanly(
    fake: fakekube.FakeKube, ctx: context.Context, tmp_path: pathlib.Path
) -> None:
    fake.add(v.vm("web"))
    port = _free_port()
    cmd = [
        sys.executable,
        "-c",
        "from csi_vm.cli.main import run; run()",
        "controller",
        "run",
        "--kubeconfig",
        str(fake.kubeconfig(tmp_path / "kubeconfig")),
        "--metrics-port",
        str(port),
        "--lease-namespace",
        "csi-vm",
        "--resync",
        "2",
    ]
    env = {**os.environ, "POD_NAME": "controller-0"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: _vm_status(fake).get("phase") == "Provisioning")
        # The counter moves just after the status write the line above saw.
        _wait(lambda: 'reconciles_total{kind="csivms",result="ok"}' in _metrics(port))
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lease_res = next(r for r in conftest.EXTRA if r.plural == "leases")
    lease = fake.store.get(lease_res, "csi-vm", "csi-vm-controller")
    assert not lease["spec"].get("holderIdentity")  # handed back for a quick takeover
    other = leader.Elector(
        objs=ctx.objs, namespace="csi-vm", name="csi-vm-controller", identity="controller-1"
    )
    assert other.try_acquire()  # at once: no lease duration to wait out
