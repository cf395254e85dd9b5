"""Running a VM: start on a node, stop, status, console.

Start is one journaled step (`launch`: publish the disks on the node, define
and start the domain) and a commit that records where the VM runs; a start
killed half-way is rolled back by `resume`. Stop commits "stopped" first and
then halts the domain as a tidy-up step, which `resume` finishes if needed.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from typing import Any

from csi_vm import errors
from csi_vm.flows import context, engine, plans, vm_actions
from csi_vm.store import records, running
from launcher import guest


@dataclasses.dataclass(frozen=True, kw_only=True)
class Boot:
    """Direct kernel boot; without one the VM boots from its first disk."""

    kernel: pathlib.Path
    initramfs: pathlib.Path
    cmdline: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "kernel": str(self.kernel.resolve()),
            "initramfs": str(self.initramfs.resolve()),
            "cmdline": self.cmdline,
        }


@dataclasses.dataclass(frozen=True, kw_only=True)
class Status:
    vm: str
    node: str
    state: str  # libvirt's state, or "gone"
    reason: str
    problem: str | None  # why a VM recorded as running is not, if it is not
    console: pathlib.Path | None  # None while it is not running


def target(index: int) -> str:
    """Guest device name of the VM's index-th disk: vda, vdb, ..."""
    return "vd" + "abcdefghijklmnopqrstuvwxyz"[index]


def one_driver(vm: records.VM) -> str:
    drivers = {d.driver for d in vm.disks}
    if len(drivers) != 1:
        raise errors.Unsupported(
            f"VM {vm.name} has disks on {len(drivers) or 'no'} drivers; "
            "running it needs all its disks on one driver"
        )
    return drivers.pop()


def launch_data(vm: records.VM, *, node: str, boot: dict[str, Any]) -> dict[str, Any]:
    return {
        "vm": vm.name,
        "node": node,
        "driver": one_driver(vm),
        "vcpus": vm.spec.vcpus,
        "memory_mib": vm.spec.memory_mib,
        "boot": boot,
        "disks": [
            {"volume_id": d.volume_id, "target": target(i), "mode": d.mode.value}
            for i, d in enumerate(vm.disks)
        ],
    }


def plan_start(env: context.Env, *, vm_name: str, node: str = "") -> plans.Plan:
    """The checks of a start, and what it would do; changes nothing (--dry-run)."""
    vm, node, _ = _check_start(env, vm_name=vm_name, node=node)
    what = f"staged and published on node {node}"
    return _plan(vm, operation="start", node=node, strategy="csi-publish", what=what)


def plan_stop(env: context.Env, *, vm_name: str) -> plans.Plan:
    """The checks of a stop, and what it would do; changes nothing (--dry-run)."""
    vm = records.get_vm(env.store, vm_name)
    run = running.get(env.store, vm_name)
    one_driver(vm)
    what = f"unpublished and unstaged on {run.node}"
    return _plan(vm, operation="stop", node=run.node, strategy="csi-unpublish", what=what)


def _plan(vm: records.VM, *, operation: str, node: str, strategy: str, what: str) -> plans.Plan:
    disks = tuple(
        plans.DiskPlan(disk=d.name, driver=d.driver, strategy=strategy, reason=what)
        for d in vm.disks
    )
    return plans.Plan(operation=operation, vm=vm.name, disks=disks, detail=f"on {node}")


def _check_start(env: context.Env, *, vm_name: str, node: str) -> tuple[records.VM, str, str]:
    vm = records.get_vm(env.store, vm_name)
    node = node or env.node
    uri = env.cfg.node_config(node).libvirt
    current = running.find(env.store, vm_name)
    if current is not None:
        raise errors.Rejected(f"VM {vm_name} already runs on {current.node}")
    one_driver(vm)
    return vm, node, uri


def start(env: context.Env, *, vm_name: str, node: str = "", boot: Boot | None = None) -> Status:
    vm, node, uri = _check_start(env, vm_name=vm_name, node=node)
    boot_data = boot.as_dict() if boot else {}
    data = launch_data(vm, node=node, boot=boot_data)
    with engine.Flow(env, kind="start", vm=vm_name, args={"node": node}) as flow:
        flow.run("launch", data)
        row = running.Running(
            vm=vm_name, node=node, uri=uri, domain=vm_name, boot=boot_data, started=time.time()
        )
        flow.commit(lambda cur: running.insert(cur, row))
    return status(env, vm_name=vm_name)


def stop(env: context.Env, *, vm_name: str, grace_s: float = 30.0) -> running.Running:
    vm = records.get_vm(env.store, vm_name)  # an unknown VM first: "no VM named"
    run = running.get(env.store, vm_name)
    halt = {"vm": vm_name, "node": run.node, "driver": one_driver(vm), "grace_s": grace_s}
    with engine.Flow(env, kind="stop", vm=vm_name, args={"node": run.node}) as flow:
        flow.commit(lambda cur: running.delete(cur, vm_name), after=[("halt", halt)])
    return run


def status(env: context.Env, *, vm_name: str) -> Status:
    vm = records.get_vm(env.store, vm_name)  # an unknown VM is an error, exit 2
    run = running.find(env.store, vm_name)
    if run is None:
        # A VM that is not running is an answer, as `virsh domstate` gives it.
        return Status(
            vm=vm_name, node="", state="shut off", reason="not started", problem=None, console=None
        )
    with vm_actions.launcher(env, node_name=run.node, driver=one_driver(vm)) as on:
        try:
            got = on.status(vm_name)
        except errors.NotFound:
            return Status(
                vm=vm_name,
                node=run.node,
                state="gone",
                reason="",
                console=console(env, vm_name=vm_name),
                problem="the node has no record of it (was its state directory removed?)",
            )
    return Status(
        vm=vm_name,
        node=run.node,
        state=got.domain.state.value if got.domain else "gone",
        reason=got.domain.reason if got.domain else "",
        problem=got.problem,
        console=got.console_log,
    )


def console(env: context.Env, *, vm_name: str) -> pathlib.Path:
    """The serial console log of the VM on the node it runs (or last ran) on."""
    run = running.find(env.store, vm_name)
    nodes = [run.node] if run else [env.node, *env.cfg.nodes]
    for node_name in nodes:
        path = vm_actions.launcher_dir(env, node_name) / "vms" / vm_name / "console.log"
        if path.exists():
            return path
    raise errors.NotFound(f"VM {vm_name} has no console log", hint="start it first")


def counter_guest(*, agent: bool = False) -> Boot:
    """The project's counter guest (built once from Debian packages, then cached).

    `agent`: the variant that runs qemu-guest-agent and counts in a file on the
    ext4 its first disk must hold (`launcher.fscounter.make_image`).
    """
    built = guest.build(agent=agent)
    return Boot(kernel=built.kernel, initramfs=built.initramfs, cmdline=built.cmdline)
