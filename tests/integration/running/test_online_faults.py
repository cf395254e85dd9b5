"""Online expansion on a driver that answers without growing the device (--fault).

The VM's node does not show the growth: the flow takes the block copy into a
new, larger volume, says why, and the guest sees the new size.
"""

from __future__ import annotations

import time

import pytest

from csi_vm.csi import client as csi_client
from csi_vm.flows import online, vmrun, vms
from csi_vm.store import records
from launcher import counter

from .conftest import MIB, Lab, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(240)]


def _sees(lab: Lab, name: str, size: int, *, within: float = 20.0) -> int:
    """Wait until the guest wrote a record showing `size` bytes on its (new) disk."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        record = counter.read_record(lab.device(name, node="node-a"))
        if record is not None and record.disk_sectors * 512 == size:
            return record.value
        time.sleep(0.1)
    raise AssertionError(f"the guest did not see {size} bytes within {within} s")


def test_online_expansion_the_node_does_not_show_takes_a_block_copy(lab: Lab) -> None:
    driver = lab.drivers["local"]
    with csi_client.Client(driver.endpoint) as c:
        before = {e.volume.volume_id for e in c.list_volumes()}
    lab.create_vm("liar", driver="local")
    disk = lab.start("liar")
    assert lab.env.plan("local")["disk_expand"].strategy == "csi-expand"  # probed honest
    driver.args += ["--fault", "expand-no-grow"]
    driver.restart()
    try:
        plan = online.expand(lab.env, vm="liar", disk="root", size=128 * MIB)
    finally:
        del driver.args[-2:]
    choice = plan.disks[0]
    assert choice.strategy == "block-copy"
    assert "ControllerExpandVolume answered" in choice.reason
    assert "cannot be undone" in choice.reason
    assert records.get_vm(lab.env.store, "liar").disk("root").size == 128 * MIB
    value = _sees(lab, "liar", 128 * MIB)
    wait_for_counter(lab.device("liar", node="node-a"), above=value, within=10)
    assert disk != lab.device("liar", node="node-a")  # pivoted onto the new volume
    vmrun.stop(lab.env, vm_name="liar", grace_s=0)
    vms.delete(lab.env, name="liar")
    driver.restart()
    with csi_client.Client(driver.endpoint) as c:
        assert {e.volume.volume_id for e in c.list_volumes()} == before
