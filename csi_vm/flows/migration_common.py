"""What moving a VM to another node decides and records, live or cold."""

from __future__ import annotations

import dataclasses
import sqlite3

from csi_vm.flows import context, volume_steps
from csi_vm.store import records, running

SHARED = "shared-volume"
STORAGE = "storage-migration"
COLD = "cold"


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
class Move:
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


def vol(d: records.Disk) -> volume_steps.Vol:
    return volume_steps.Vol(driver=d.driver, volume_id=d.volume_id, mode=d.mode, size=d.size)


def switch(cur: sqlite3.Cursor, vm: str, moves: list[Move], *, to: str, uri: str) -> None:
    """The commit: the VM runs on `to`, its disks are the moved volumes."""
    for m in moves:
        records.move_disk(cur, vm=vm, disk=m.disk.name, driver=m.driver, volume_id=m.volume_id)
    running.move(cur, vm=vm, node=to, uri=uri)
