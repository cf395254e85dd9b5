"""Live migration of a running VM to another node, with the disks it needs there.

    shared-volume      the driver's volumes are verified (or asserted) shared
                       across nodes: publish them on the target, live-migrate
    storage-migration  otherwise: new volumes through the target node's driver,
                       published there, live migration with storage copy (NBD
                       mirror); the source volumes are retired after success

Every step is journaled: a failure or a kill -9 at any point leaves the VM
running on the source with its original disks once `resume` ran, and removes
the new volumes; after the commit, only the source side is tidied up.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from typing import Any

from csi_vm import errors, spec
from csi_vm.flows import context, engine, steps, vmactions, vmrun
from csi_vm.store import records, running
from launcher import blockjobs, libvirt_conn

SHARED = "shared-volume"
STORAGE = "storage-migration"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    vm: str
    source: str
    target: str
    strategy: str
    reason: str
    downtime_ms: int
    bytes_copied: int
    duration_ms: int

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Move:
    """One disk: where it is, and the volume it will be on at the target."""

    disk: records.Disk
    target: str  # guest device
    driver: str
    volume_id: str


def choose(env: context.Env, *, driver: str, to: str) -> tuple[str, str, str]:
    """(strategy, reason, target driver) for moving a driver's disks to node `to`."""
    choice = env.plan(driver)["live_migration"]
    reaches = to in env.driver(driver).nodes
    if choice.strategy == SHARED and reaches:
        return SHARED, choice.reason, driver
    target_driver = env.cfg.node_config(to).driver or driver
    env.driver(target_driver)
    why = choice.reason if choice.strategy != SHARED else f"driver {driver} has no node {to}"
    return STORAGE, f"{why}; new volumes through driver {target_driver}", target_driver


def migrate(env: context.Env, *, vm_name: str, to: str, bandwidth_mib_s: int = 0) -> Result:
    began = time.monotonic()
    run = running.get(env.store, vm_name)
    if run.node == to:
        raise errors.Rejected(f"VM {vm_name} already runs on {to}")
    to_uri = env.cfg.node_config(to).libvirt
    vm = records.get_vm(env.store, vm_name)
    driver = vmrun.one_driver(vm)
    strategy, reason, target_driver = choose(env, driver=driver, to=to)
    args = {"to": to, "strategy": strategy}
    with engine.Flow(env, kind="migrate", vm=vm_name, args=args) as flow:
        moves = _volumes(flow, vm, strategy=strategy, target_driver=target_driver)
        published = [_publish(flow, m, run=run, to=to) for m in moves]
        data = _migrate_data(env, run, to=to, moves=moves, published=published, strategy=strategy)
        stats = flow.run("migrate", {**data, "bandwidth_mib_s": bandwidth_mib_s})
        after: list[tuple[str, dict[str, Any]]] = [
            ("adopt_vm", {"vm": vm_name, "node": to, "driver": target_driver,
                          "entries": [p["entry"] for p in published]}),
            ("leave_node", {"vm": vm_name, "node": run.node, "driver": driver}),
        ]  # fmt: skip
        if strategy == STORAGE:
            after += [steps.retire(_vol(m.disk)) for m in moves]
        flow.commit(lambda cur: _switch(cur, vm_name, moves, to=to, uri=to_uri), after=after)
    return Result(
        vm=vm_name, source=run.node, target=to, strategy=strategy, reason=reason,
        downtime_ms=stats["downtime_ms"], bytes_copied=stats["disk_bytes"],
        duration_ms=int((time.monotonic() - began) * 1000),
    )  # fmt: skip


def _vol(d: records.Disk) -> steps.Vol:
    return steps.Vol(driver=d.driver, volume_id=d.volume_id, mode=d.mode, size=d.size)


def _volumes(
    flow: engine.Flow, vm: records.VM, *, strategy: str, target_driver: str
) -> list[_Move]:
    moves = []
    for i, d in enumerate(vm.disks):
        volume_id = d.volume_id
        if strategy == STORAGE:
            volume_id = steps.new_volume(
                flow, what=f"mig-{d.name}", driver=target_driver, size=d.size, mode=d.mode
            ).volume_id
        moves.append(
            _Move(disk=d, target=vmrun.target(i), driver=target_driver, volume_id=volume_id)
        )
    return moves


def _publish(flow: engine.Flow, m: _Move, *, run: running.Running, to: str) -> dict[str, Any]:
    data = {
        "vm": run.domain, "node": to, "driver": m.driver, "volume_id": m.volume_id,
        "mode": m.disk.mode.value, "target": m.target, "slot": m.target, "size": m.disk.size,
    }  # fmt: skip
    return flow.run("publish_spare", data)


def _migrate_data(
    env: context.Env,
    run: running.Running,
    *,
    to: str,
    moves: list[_Move],
    published: list[dict[str, Any]],
    strategy: str,
) -> dict[str, Any]:
    block = {m.target: m.disk.mode is spec.Mode.BLOCK for m in moves}
    return {
        "vm": run.domain,
        "source": run.node,
        "node": to,
        "sources": {
            m.target: {"path": p["source"], "block": block[m.target]}
            for m, p in zip(moves, published, strict=True)
        },
        "original": _original_sources(run, moves, block),
        "copy": [m.target for m in moves] if strategy == STORAGE else [],
        "console_log": str(vmactions.launcher_dir(env, to) / "vms" / run.vm / "console.log"),
        "original_console_log": str(
            vmactions.launcher_dir(env, run.node) / "vms" / run.vm / "console.log"
        ),
    }


def _original_sources(
    run: running.Running, moves: list[_Move], block: dict[str, bool]
) -> dict[str, dict[str, Any]]:
    """Where the guest's disks are on the source: a migration back goes there."""
    with libvirt_conn.Connection.open(run.uri) as conn:
        return {
            m.target: {
                "path": blockjobs.disk_source(conn, run.domain, target=m.target),
                "block": block[m.target],
            }
            for m in moves
        }


def _switch(cur: sqlite3.Cursor, vm: str, moves: list[_Move], *, to: str, uri: str) -> None:
    """The commit: the VM runs on `to`, its disks are the moved volumes."""
    for m in moves:
        records.move_disk(cur, vm=vm, disk=m.disk.name, driver=m.driver, volume_id=m.volume_id)
    running.move(cur, vm=vm, node=to, uri=uri)
