"""libvirtd killed and restarted while a block job or a live migration runs.

qemu keeps running when libvirtd dies, and a restarted libvirtd reconnects to
it. Each attempt is held to the rule of `twonodes`: completed, or rolled back
(by `resume` where needed), with no lost write, the guest running on one
node, no orphan, within the stated bound.
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from csi_vm.flows import migrate, offline_disk, online, snapshots, vmrun, vms
from csi_vm.store import records, running
from launcher import blockjobs, counter
from tests.integration.hardening import twonodes
from tests.integration.hardening.twonodes import NODES, SHORT_BUDGET_S, Nodes
from tests.integration.running.conftest import MIB, boot  # noqa: F401 (boot: a fixture)
from tests.support import libvirtnode, reliability

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(900)]

FAULT_JOB = "libvirtd-restarted-during-block-job"
FAULT_MIGRATION = "libvirtd-restarted-during-migration"
#: how long libvirtd stays dead: long enough that polls and the job's own
#: progress happen while it is away
DOWN_S = 1.0
#: an outage past the reconnect budget
LONG_DOWN_S = 8.0


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, boot: vmrun.Boot) -> Iterator[Nodes]:  # noqa: F811
    yield from twonodes.start_nodes(tmp_path_factory.mktemp("libvirtd-restart"), boot)


@pytest.fixture(autouse=True)
def _short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    twonodes.short_deadlines(monkeypatch)


def _restart(node: str, *, down_s: float = DOWN_S) -> threading.Thread:
    """Kill the node's libvirtd now; start it again after `down_s`, in the background."""
    libvirtnode.kill_daemon(NODES[node])

    def back() -> None:
        time.sleep(down_s)
        libvirtnode.start_daemon(NODES[node])

    thread = threading.Thread(target=back, daemon=True)
    thread.start()
    return thread


def _kill_on_first(
    monkeypatch: pytest.MonkeyPatch,
    func: str,
    disk: pathlib.Path,
    started: list[tuple[threading.Thread, int]],
    *,
    down_s: float,
) -> None:
    """Kill node-a's libvirtd the first time blockjobs.`func` runs: the job has just begun.

    `started` gets the restarting thread and the counter read as it was killed.
    """
    original: Callable[..., Any] = getattr(blockjobs, func)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not started:
            acknowledged = counter.read_counter(disk)
            started.append((_restart("node-a", down_s=down_s), acknowledged))
        return original(*args, **kwargs)

    monkeypatch.setattr(blockjobs, func, wrapped)


def _snapshot_counter(two: Nodes, snap: str) -> int:
    """The counter the guest had written when the backup began: restored, exported, read."""
    copy = f"{snap}-copy"
    vms.restore(two.env, snapshot=snap, as_vm=copy)
    image = two.lab.tmp / f"{copy}.raw"
    offline_disk.export(two.env, vm=copy, disk="root", file=image, fmt="raw")
    value = counter.read_counter(image)
    vms.delete(two.env, name=copy)
    image.unlink()
    return value


def test_libvirtd_restarted_during_online_block_jobs(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "lv-jobs"
    nodes.lab.create_vm(name, driver="bare-a")
    disk = nodes.lab.start(name, node="node-a")
    size = 64 * MIB
    cases = [
        ("expand", "_wait_mirror_ready", DOWN_S),  # killed while the copy runs
        ("expand", "_wait_block_job_gone", DOWN_S),  # killed right after the pivot was asked for
        ("snapshot", "_wait_domain_job", DOWN_S),  # killed while the push backup runs
        # down longer than the reconnect budget: the flow gives up and rolls
        # back, its undo waiting for libvirtd in turn (or, past that too,
        # `resume` finishes the rollback). Every call the undo makes of the
        # daemon that just came back has its deadline (twonodes.CALL_S).
        ("expand", "_wait_mirror_ready", LONG_DOWN_S),
        ("snapshot", "_wait_domain_job", LONG_DOWN_S),
    ]
    for i, (op, func, down_s) in enumerate(cases):
        before = counter.read_counter(disk)
        started: list[tuple[threading.Thread, int]] = []
        began = time.monotonic()
        with monkeypatch.context() as patch:
            _kill_on_first(patch, func, disk, started, down_s=down_s)
            if op == "expand":
                grown = size + 16 * MIB
                outcome = twonodes.run(
                    lambda g=grown: online.expand(nodes.env, vm=name, disk="root", size=g)
                )
            else:
                outcome = twonodes.run(
                    lambda s=f"snap-{i}": online.snapshot(nodes.env, vm_name=name, name=s)
                )
        assert started, f"{func} never ran: no fault was injected"
        restarter, at_fault = started[0]
        restarter.join(60)
        via_resume = twonodes.settle(nodes)
        checks = twonodes.measure(nodes, name, before=at_fault, began=began)
        print(f"{op}, libvirtd down {down_s} s from {func}: {outcome}, via resume: {via_resume}")
        twonodes.record(FAULT_JOB, outcome, via_resume=via_resume, checks=checks)
        disk = nodes.lab.device(name, node="node-a")
        vm = records.get_vm(nodes.env.store, name)
        if op == "expand" and outcome == reliability.COMPLETED:
            size += 16 * MIB
        assert vm.disk("root").size == size
        if op == "snapshot":
            taken = records.find_snapshot(nodes.env.store, f"snap-{i}")
            assert (taken is not None) == (outcome == reliability.COMPLETED)
            if taken is not None:  # the backup holds the disk as it was when it began
                assert before <= _snapshot_counter(nodes, taken.name) <= counter.read_counter(disk)
        if down_s > SHORT_BUDGET_S:
            assert outcome == reliability.ROLLED_BACK
    for snap in records.list_snapshots(nodes.env.store):
        snapshots.delete(nodes.env, name=snap.name)
    vmrun.stop(nodes.env, vm_name=name, grace_s=0)


@pytest.mark.parametrize("killed", ["node-a", "node-b"], ids=["source", "destination"])
def test_libvirtd_restarted_during_storage_migration(nodes: Nodes, killed: str) -> None:
    name = f"lv-mig-{killed}"
    nodes.lab.create_vm(name, driver="bare-a")
    disk = nodes.lab.start(name, node="node-a")
    started: list[tuple[threading.Thread, int]] = []
    began = time.monotonic()

    def kill() -> None:
        acknowledged = counter.read_counter(disk)
        started.append((_restart(killed), acknowledged))

    with twonodes.once_copying(nodes, name, kill):
        # 4 MiB/s: the 64 MiB disk copy takes long enough to be killed in the middle
        outcome = twonodes.run(
            lambda: migrate.migrate(nodes.env, vm_name=name, to="node-b", bandwidth_mib_s=4)
        )
    assert started, "the migration never began its disk copy: no fault was injected"
    restarter, at_fault = started[0]
    restarter.join(60)
    via_resume = twonodes.settle(nodes)
    checks = twonodes.measure(nodes, name, before=at_fault, began=began)
    print(f"migration with the {killed} libvirtd killed: {outcome}, via resume: {via_resume}")
    twonodes.record(FAULT_MIGRATION, outcome, via_resume=via_resume, checks=checks)
    expected = "node-b" if outcome == reliability.COMPLETED else "node-a"
    assert running.get(nodes.env.store, name).node == expected
    vmrun.stop(nodes.env, vm_name=name, grace_s=0)
