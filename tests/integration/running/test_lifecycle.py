"""vm start / status / console / stop through the store, offline operations refused,
an online clone, and a crash of the guest noticed."""

from __future__ import annotations

import os
import pathlib
import signal
import time

import pytest

from csi_vm import errors
from csi_vm.flows import offline_disk, online, snapshots, vmrun, vms
from csi_vm.store import records, running
from launcher import counter

from .conftest import MIB, Lab, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(180)]


def _refused_while_running(lab: Lab, name: str) -> None:
    refused = {
        "import": lambda: offline_disk.import_image(
            lab.env, vm=name, disk="root", image=lab.tmp / "x.img"
        ),
        "expand": lambda: offline_disk.expand(lab.env, vm=name, disk="root", size=128 * MIB),
        "snapshot": lambda: snapshots.create(lab.env, vm_name=name, name=None),
        "clone": lambda: vms.clone(lab.env, source=name, target="other"),
        "delete": lambda: vms.delete(lab.env, name=name),
    }
    for what, call in refused.items():
        with pytest.raises(errors.Rejected, match="running"):
            call()
        print("refused while running:", what)


def _clone_counter(lab: Lab, name: str) -> int:
    image = lab.tmp / f"{name}.raw"
    offline_disk.export(lab.env, vm=name, disk="root", file=image, fmt="raw")
    value = counter.read_counter(image)
    image.unlink()
    return value


def _wait_not_running(lab: Lab, name: str) -> vmrun.Status:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = vmrun.status(lab.env, vm_name=name)
        if status.problem:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{name} still runs 20 s after its qemu was killed")


def test_start_status_console_clone_crash_stop(lab: Lab) -> None:
    lab.create_vm("life")
    disk = lab.start("life")
    first = wait_for_counter(disk, above=0, within=10)

    got = vmrun.status(lab.env, vm_name="life")
    assert (got.node, got.state, got.problem) == ("node-a", "running", None)
    assert running.get(lab.env.store, "life").node == "node-a"
    assert "CSIVMCTR start from" in vmrun.console(lab.env, vm_name="life").read_text()
    with pytest.raises(errors.Rejected, match="already runs"):
        vmrun.start(lab.env, vm_name="life", boot=lab.boot)
    _refused_while_running(lab, "life")

    # A running VM clones from an online snapshot, which is then removed.
    before = wait_for_counter(disk, above=first, within=10)
    plan = online.clone(lab.env, source="life", target="life-copy")
    after = counter.read_counter(disk)
    assert plan.operation == "clone" and "online snapshot" in plan.detail
    assert records.list_snapshots(lab.env.store) == []
    assert before <= _clone_counter(lab, "life-copy") <= after
    vms.delete(lab.env, name="life-copy")

    # The qemu process dies under the guest, as on an OOM kill: status says so.
    pid = int(pathlib.Path("/run/libvirt/qemu/life.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert "crashed" in (_wait_not_running(lab, "life").problem or "")

    vmrun.stop(lab.env, vm_name="life", grace_s=0)
    assert running.find(lab.env.store, "life") is None
    assert vmrun.status(lab.env, vm_name="life").state == "shut off"
    vms.delete(lab.env, name="life")
