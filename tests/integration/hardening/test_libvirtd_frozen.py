"""libvirtd frozen (SIGSTOP) while a block job or a live migration runs.

A stopped daemon accepts connections and answers nothing: without a
deadline every libvirt call would wait forever. The daemon stays stopped
until the operation returns, so its own calls and its rollback meet the
deadline (or keepalive, for the migration call itself); then SIGCONT, and
`resume` finishes what the rollback could not. Each attempt is held to the
rule of `twonodes`: no lost write, the guest running and writing on one
node, no orphan, within the stated bound.
"""

from __future__ import annotations

import contextlib
import pathlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from csi_vm.flows import migrate, online, vmrun
from csi_vm.store import records, running
from launcher import blockjobs, counter
from tests.integration.hardening import twonodes
from tests.integration.hardening.twonodes import NODES, Nodes
from tests.integration.running.conftest import MIB, boot  # noqa: F401 (boot: a fixture)
from tests.support import libvirtnode, reliability

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(900)]

FAULT_JOB = "libvirtd-frozen-during-block-job"
FAULT_MIGRATION = "libvirtd-frozen-during-migration"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, boot: vmrun.Boot) -> Iterator[Nodes]:  # noqa: F811
    yield from twonodes.start_nodes(tmp_path_factory.mktemp("libvirtd-frozen"), boot)


@pytest.fixture(autouse=True)
def _short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    twonodes.short_deadlines(monkeypatch)


def _freeze(node: str, disk: pathlib.Path, thawed_after: contextlib.ExitStack) -> int:
    """Stop `node`'s libvirtd until `thawed_after` closes; the counter the guest had written."""
    acknowledged = counter.read_counter(disk)
    thawed_after.enter_context(libvirtnode.frozen(NODES[node]))
    return acknowledged


def _freeze_on_first(
    monkeypatch: pytest.MonkeyPatch,
    func: str,
    disk: pathlib.Path,
    thawed_after: contextlib.ExitStack,
) -> list[int]:
    """Stop node-a's libvirtd the first time blockjobs.`func` runs: the job has just begun.

    Returns a list that gets the counter read as the daemon was stopped.
    """
    original: Callable[..., Any] = getattr(blockjobs, func)
    at_fault: list[int] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not at_fault:
            at_fault.append(_freeze("node-a", disk, thawed_after))
        return original(*args, **kwargs)

    monkeypatch.setattr(blockjobs, func, wrapped)
    return at_fault


@pytest.mark.parametrize(
    ("op", "func"),
    [("expand", "_wait_mirror_ready"), ("snapshot", "_wait_domain_job")],
    ids=["block-copy", "push-backup"],
)
def test_libvirtd_frozen_during_online_block_job(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch, op: str, func: str
) -> None:
    name = f"lv-frozen-{op}"
    size = 64 * MIB
    nodes.lab.create_vm(name, driver="bare-a", size=size)
    disk = nodes.lab.start(name, node="node-a")
    began = time.monotonic()
    with monkeypatch.context() as patch, contextlib.ExitStack() as thawed_after:
        at_fault = _freeze_on_first(patch, func, disk, thawed_after)
        if op == "expand":
            call = lambda: online.expand(nodes.env, vm=name, disk="root", size=size + 16 * MIB)  # noqa: E731
        else:
            call = lambda: online.snapshot(nodes.env, vm_name=name, name="frozen")  # noqa: E731
        outcome = twonodes.run(call)
    assert at_fault, f"{func} never ran: no fault was injected"
    # nothing that needs libvirtd can finish while it is stopped
    assert outcome == reliability.ROLLED_BACK
    via_resume = twonodes.settle(nodes)
    checks = twonodes.measure(nodes, name, before=at_fault[0], began=began)
    print(f"{op}, libvirtd frozen from {func}: {outcome}, via resume: {via_resume}")
    twonodes.record(FAULT_JOB, outcome, via_resume=via_resume, checks=checks)
    assert records.get_vm(nodes.env.store, name).disk("root").size == size
    assert records.find_snapshot(nodes.env.store, "frozen") is None
    vmrun.stop(nodes.env, vm_name=name, grace_s=0)


@pytest.mark.parametrize("stopped", ["node-a", "node-b"], ids=["source", "destination"])
def test_libvirtd_frozen_during_storage_migration(nodes: Nodes, stopped: str) -> None:
    name = f"lv-frozen-mig-{stopped}"
    nodes.lab.create_vm(name, driver="bare-a")
    disk = nodes.lab.start(name, node="node-a")
    at_fault: list[int] = []
    began = time.monotonic()
    with contextlib.ExitStack() as thawed_after:

        def freeze() -> None:
            at_fault.append(_freeze(stopped, disk, thawed_after))

        with twonodes.once_copying(nodes, name, freeze):
            # 4 MiB/s: the 64 MiB disk copy is still running when the daemon stops
            outcome = twonodes.run(
                lambda: migrate.migrate(nodes.env, vm_name=name, to="node-b", bandwidth_mib_s=4)
            )
    assert at_fault, "the migration never began its disk copy: no fault was injected"
    assert outcome == reliability.ROLLED_BACK
    via_resume = twonodes.settle(nodes)
    checks = twonodes.measure(nodes, name, before=at_fault[0], began=began)
    print(f"migration with the {stopped} libvirtd frozen: {outcome}, via resume: {via_resume}")
    twonodes.record(FAULT_MIGRATION, outcome, via_resume=via_resume, checks=checks)
    assert running.get(nodes.env.store, name).node == "node-a"
    vmrun.stop(nodes.env, vm_name=name, grace_s=0)
