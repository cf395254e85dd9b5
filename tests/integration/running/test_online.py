"""Online snapshot and expansion of the running counter guest, native and fallback.

One guest boot per test: each test snapshots, then expands, the same VM.
"""

from __future__ import annotations

import pathlib
import time

import pytest

from csi_vm.csi import client as csi_client
from csi_vm.flows import diskops, online, vmrun, vms
from csi_vm.store import records
from launcher import counter

from .conftest import MIB, Lab, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(240)]


def _snapshot_counter(lab: Lab, snap: str, *, driver: str) -> int:
    """The counter inside a snapshot: restored as a new VM, exported to a file, read."""
    copy = f"{snap}-copy"
    vms.restore(lab.env, snapshot=snap, as_vm=copy)
    image = lab.tmp / f"{copy}.raw"
    diskops.export(lab.env, vm=copy, disk="root", file=image, fmt="raw")
    value = counter.read_counter(image)
    vms.delete(lab.env, name=copy)
    image.unlink()
    return value


def _sees(disk: pathlib.Path, size: int, *, within: float = 20.0) -> counter.Record:
    """Wait until the guest wrote a record that shows the new size of its disk."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        record = counter.read_record(disk)
        if record is not None and record.disk_sectors * 512 == size:
            return record
        time.sleep(0.1)
    raise AssertionError(f"the guest did not see {size} bytes on {disk} within {within} s")


def _published(lab: Lab, driver: str) -> dict[str, tuple[str, ...]]:
    with csi_client.Client(lab.env.driver(driver).endpoint) as c:
        return {e.volume.volume_id: e.published_node_ids for e in c.list_volumes()}


@pytest.mark.parametrize(
    ("driver", "snap_strategy", "expand_strategy"),
    [("local", "csi-snapshot", "csi-expand"), ("bare", "backup", "block-copy")],
    ids=["native", "fallback"],
)
def test_snapshot_and_expand_while_the_counter_runs(
    lab: Lab, driver: str, snap_strategy: str, expand_strategy: str
) -> None:
    name = f"online-{driver}"
    lab.create_vm(name, driver=driver)
    disk = lab.start(name)

    before = wait_for_counter(disk, above=0, within=10)
    result = online.snapshot(lab.env, vm_name=name, name=f"{name}-snap")
    after = counter.read_counter(disk)
    assert result.plan.strategy("root") == snap_strategy
    assert result.consistency == online.CRASH_CONSISTENT  # the counter guest has no agent
    wait_for_counter(disk, above=after, within=10)  # the guest kept running

    plan = online.expand(lab.env, vm=name, disk="root", size=128 * MIB)
    assert plan.strategy("root") == expand_strategy
    disk = lab.device(name, node="node-a")  # after a pivot: the new volume
    grown = _sees(disk, 128 * MIB)
    wait_for_counter(disk, above=grown.value, within=10)

    vmrun.stop(lab.env, vm_name=name, grace_s=0)
    assert not any(_published(lab, driver).values())
    taken = _snapshot_counter(lab, f"{name}-snap", driver=driver)
    print(f"{driver}: counter {before} <= snapshot {taken} <= {after}")
    assert before <= taken <= after
    # no orphans: the VM's disk, and the snapshot's volume when it is a backup
    kept = {records.get_vm(lab.env.store, name).disk("root").volume_id}
    snap = records.get_snapshot(lab.env.store, f"{name}-snap").disk("root")
    if snap.strategy == "host-copy":
        kept.add(snap.object_id)
    assert set(_published(lab, driver)) == kept
