"""A canary CSI secret never shows up anywhere csi-vm writes or says.

The config gives the driver a unique secret; probe, flows, failing calls and
the CLI run at DEBUG; then every log record, exception text, CLI output, the
SQLite store (journal rows included) and every file under the lab is searched
for it. The secret must still reach the driver: the proxy sees it on the wire.
"""

from __future__ import annotations

import logging
import os
import pathlib
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable

import grpc
import pytest

from csi_vm import errors
from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.flows import offline_disk, snapshots, vms
from tests.integration.hardening.conftest import SIZE, ProxyLab, settle

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _cli(lab: ProxyLab, *args: str) -> str:
    env = {
        **os.environ,
        "CSI_VM_CONFIG": str(lab.tmp / "config.yaml"),
        "CSI_VM_DB": str(lab.tmp / "csi-vm.db"),
        "CSI_VM_STATE_DIR": str(lab.tmp / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", "--debug", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def _failures(lab: ProxyLab) -> list[str]:
    """Failing calls: their exception texts, reprs and tracebacks."""
    texts = []
    lab.proxy.fail(grpc.StatusCode.PERMISSION_DENIED, methods={"CreateVolume"})
    for call in (
        lambda: vms.clone(lab.env, source="vm1", target="vm3"),
        lambda: lab.env.controller("local").delete_volume("vol-" + "0" * 32),
    ):
        try:
            call()
        except errors.CsiVmError as err:
            texts += [str(err), repr(err), "".join(traceback.format_exception(err))]
    settle(lab)
    return texts


def _files_containing(root: pathlib.Path, needle: bytes) -> list[str]:
    # The config file is where the operator put the secret: the one place it belongs.
    files = [p for p in root.rglob("*") if p.is_file() and p.name != "config.yaml"]
    return [str(p) for p in files if needle in p.read_bytes()]


def test_canary_secret_appears_nowhere(
    proxy_lab_factory: Callable[..., ProxyLab], caplog: pytest.LogCaptureFixture
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    lab = proxy_lab_factory(driver_extra={"secrets": {"password": canary}})
    lab.proxy.requests = []

    vms.create(lab.env, lab.spec("vm1"))
    snapshots.create(lab.env, vm_name="vm1", name="s1")
    vms.clone(lab.env, source="vm1", target="vm2")
    offline_disk.expand(lab.env, vm="vm2", disk="root", size=2 * SIZE)
    vms.restore(lab.env, snapshot="s1", as_vm="vm4")
    texts = _failures(lab)
    texts.append(repr(lab.env.cfg))
    for args in (
        ["capabilities", "probe", "--config", str(lab.tmp / "config.yaml"), "-o", "json"],
        ["vm", "list"],
        ["snapshot", "create", "vm1", "--name", "s2"],
        ["clone", "nope", "vm5"],
        ["resume"],
    ):
        texts.append(_cli(lab, *args))
    texts += [r.getMessage() for r in caplog.records]
    texts.append(lab.driver.log_text())
    dump = "\n".join(lab.env.store.connection().iterdump())

    wire = [
        pb.CreateVolumeRequest.FromString(raw).secrets.get("password")
        for method, raw in lab.proxy.requests
        if method == "CreateVolume"
    ]
    assert canary in wire, "the secret never reached the driver: the test proves nothing"
    assert not [t for t in texts if canary in t]
    assert canary not in dump
    assert _files_containing(lab.tmp, canary.encode()) == []
