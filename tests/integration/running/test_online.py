"""Online snapshot and expansion of the running counter guest, native and fallback.

One guest boot per test: each test snapshots, then expands, the same VM.
"""

from __future__ import annotations

import pathlib
import time

import pytest

from csi_vm.csi import client as csi_client
from csi_vm.flows import offline_disk, online, vmrun, vms
from csi_vm.store import records
from launcher import counter
from tests.support import crash

from .conftest import MIB, Lab, wait_for_counter
from .conftest import run_cli as _cli

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(240)]


def _snapshot_counter(lab: Lab, snap: str, *, driver: str) -> int:
    """The counter inside a snapshot: restored as a new VM, exported to a file, read."""
    copy = f"{snap}-copy"
    vms.restore(lab.env, snapshot=snap, as_vm=copy)
    image = lab.tmp / f"{copy}.raw"
    offline_disk.export(lab.env, vm=copy, disk="root", file=image, fmt="raw")
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
    assert result.why == "no guest agent is connected to the VM's agent channel"
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


@pytest.mark.parametrize(
    ("crash_at", "grown"),
    [("3:after", False), ("4", True)],
    ids=["after-pivot-before-commit", "after-commit"],
)
def test_kill_during_an_online_block_copy_expansion_then_resume(
    lab: Lab, crash_at: str, grown: bool
) -> None:
    """Killed after the pivot: the guest goes back to its old volume; after the
    commit: resume finishes, the guest sees the new size. No orphans either way."""
    name = f"crash-grow-{crash_at.replace(':', '-')}"
    lab.create_vm(name, driver="bare")
    disk = lab.start(name)
    original = records.get_vm(lab.env.store, name).disk("root").volume_id
    others = set(_published(lab, "bare")) - {original}

    killed = _cli(lab, {crash.ENV: crash_at}, "disk", "expand", name, "root", "128MiB")
    assert killed.returncode == -9, killed.stderr
    resumed = _cli(lab, {}, "resume")
    assert resumed.returncode == 0, resumed.stderr

    vm = records.get_vm(lab.env.store, name)
    size = 128 * MIB if grown else 64 * MIB
    assert vm.disk("root").size == size
    now = lab.device(name, node="node-a")
    assert (now != disk) == grown
    record = _sees(now, size)
    wait_for_counter(now, above=record.value + 1, within=10)
    # the old volume retired, or the new one removed: nothing else is left
    assert set(_published(lab, "bare")) == others | {vm.disk("root").volume_id}
    vmrun.stop(lab.env, vm_name=name, grace_s=0)


def test_kill_during_a_backup_snapshot_then_resume(lab: Lab) -> None:
    """Killed right after the backup began: resume stops the job, removes its volume."""
    name = "crash-backup"
    lab.create_vm(name, driver="bare")
    disk = lab.start(name)
    volumes = set(_published(lab, "bare"))
    # steps: create_volume, attach, freeze, backup_begin (4), backup_wait, ...
    killed = _cli(lab, {crash.ENV: "4:after"}, "snapshot", "create", name, "--name", "x")
    assert killed.returncode == -9, killed.stderr
    resumed = _cli(lab, {}, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "rolled back online-snapshot" in resumed.stdout
    assert records.find_snapshot(lab.env.store, "x") is None
    assert set(_published(lab, "bare")) == volumes
    wait_for_counter(disk, above=counter.read_counter(disk) + 1, within=10)
    vmrun.stop(lab.env, vm_name=name, grace_s=0)
