"""vm start / status / console / stop through the store, and offline operations refused."""

from __future__ import annotations

import pytest

from csi_vm import errors
from csi_vm.flows import diskops, snapshots, vmrun, vms
from csi_vm.store import running

from .conftest import MIB, Lab, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(180)]


def test_start_status_console_stop_and_offline_operations_refused(lab: Lab) -> None:
    lab.create_vm("life")
    disk = lab.start("life")
    first = wait_for_counter(disk, above=0, within=10)

    got = vmrun.status(lab.env, vm_name="life")
    assert (got.node, got.state, got.problem) == ("node-a", "running", None)
    assert running.get(lab.env.store, "life").node == "node-a"
    assert "CSIVMCTR start from" in vmrun.console(lab.env, vm_name="life").read_text()
    with pytest.raises(errors.Rejected, match="already runs"):
        vmrun.start(lab.env, vm_name="life", boot=lab.boot)

    refused = {
        "import": lambda: diskops.import_image(
            lab.env, vm="life", disk="root", image=lab.tmp / "x.img"
        ),
        "expand": lambda: diskops.expand(lab.env, vm="life", disk="root", size=128 * MIB),
        "snapshot": lambda: snapshots.create(lab.env, vm_name="life", name=None),
        "delete": lambda: vms.delete(lab.env, name="life"),
    }
    for what, call in refused.items():
        with pytest.raises(errors.Rejected, match="running"):
            call()
        print("refused while running:", what)

    wait_for_counter(disk, above=first, within=10)
    vmrun.stop(lab.env, vm_name="life", grace_s=0)
    assert running.find(lab.env.store, "life") is None
    with pytest.raises(errors.Rejected, match="not running"):
        vmrun.status(lab.env, vm_name="life")
    vms.delete(lab.env, name="life")
