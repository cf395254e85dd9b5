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

import time
from typing import Any

from csi_vm import errors, spec
from csi_vm.flows import (
    cold_migration,
    context,
    engine,
    migration_common,
    plans,
    vm_actions,
    vmrun,
    volume_steps,
)
from csi_vm.store import records, running
from launcher import blockjobs, libvirt_conn

SHARED = migration_common.SHARED
STORAGE = migration_common.STORAGE


def migrate(
    env: context.Env,
    *,
    vm_name: str,
    to: str,
    bandwidth_mib_s: int = 0,
    allow_downtime: bool = False,
    cold: bool = False,
) -> migration_common.Result:
    """Move a running VM to node `to`: live, or cold (stopped) when allowed and needed.

    `cold` asks for a cold migration outright; it too needs `allow_downtime`.
    """
    if cold and not allow_downtime:
        raise errors.Rejected(
            f"a cold migration stops VM {vm_name}", hint="pass --allow-downtime to accept that"
        )
    if cold:
        return cold_migration.migrate(
            env, vm_name=vm_name, to=to, reason="cold migration requested"
        )
    try:
        return _live(env, vm_name=vm_name, to=to, bandwidth_mib_s=bandwidth_mib_s)
    except errors.Unsupported as err:
        if not allow_downtime:
            raise errors.Unsupported(
                f"VM {vm_name} cannot be live-migrated to {to}: {err.message}",
                hint="--allow-downtime permits a cold migration (stop, copy, start)",
            ) from err
        reason = f"live migration impossible ({err.message}): stopped, copied, started"
        return cold_migration.migrate(env, vm_name=vm_name, to=to, reason=reason)


def plan(
    env: context.Env, *, vm_name: str, to: str, allow_downtime: bool = False, cold: bool = False
) -> plans.Plan:
    """The checks a migration runs before it changes anything, and its strategy per disk."""
    if cold and not allow_downtime:
        raise errors.Rejected(
            f"a cold migration stops VM {vm_name}", hint="pass --allow-downtime to accept that"
        )
    vm = records.get_vm(env.store, vm_name)
    run = running.get(env.store, vm_name)
    if run.node == to:
        raise errors.Rejected(f"VM {vm_name} already runs on {to}")
    env.cfg.node_config(to)
    driver = vmrun.one_driver(vm)
    if cold:
        strategy, reason, target = "cold", "cold migration requested: stop, copy, start", driver
    else:
        strategy, reason, target = migration_common.choose(env, driver=driver, to=to)
    disks = tuple(
        plans.DiskPlan(disk=d.name, driver=target, strategy=strategy, reason=reason)
        for d in vm.disks
    )
    return plans.Plan(operation="migrate", vm=vm_name, disks=disks, detail=f"{run.node} -> {to}")


def _live(
    env: context.Env, *, vm_name: str, to: str, bandwidth_mib_s: int
) -> migration_common.Result:
    began = time.monotonic()
    run = running.get(env.store, vm_name)
    if run.node == to:
        raise errors.Rejected(f"VM {vm_name} already runs on {to}")
    to_uri = env.cfg.node_config(to).libvirt
    vm = records.get_vm(env.store, vm_name)
    driver = vmrun.one_driver(vm)
    strategy, reason, target_driver = migration_common.choose(env, driver=driver, to=to)
    args = {"to": to, "strategy": strategy}
    with engine.Flow(env, kind="migrate", vm=vm_name, args=args) as flow:
        todo = _volumes(flow, vm, strategy=strategy, target_driver=target_driver)
        published = [_publish(flow, m, run=run, to=to) for m in todo]
        data = _migrate_data(env, run, to=to, todo=todo, published=published, strategy=strategy)
        stats = flow.run("migrate", {**data, "bandwidth_mib_s": bandwidth_mib_s})
        after: list[tuple[str, dict[str, Any]]] = [
            ("adopt_vm", {"vm": vm_name, "node": to, "driver": target_driver,
                          "entries": [p["entry"] for p in published]}),
            ("leave_node", {"vm": vm_name, "node": run.node, "driver": driver}),
        ]  # fmt: skip
        if strategy == STORAGE:
            after += [volume_steps.retire(migration_common.vol(m.disk)) for m in todo]
        flow.commit(
            lambda cur: migration_common.switch(cur, vm_name, todo, to=to, uri=to_uri), after=after
        )
    return migration_common.Result(
        vm=vm_name, source=run.node, target=to, strategy=strategy, reason=reason,
        downtime_ms=stats["downtime_ms"], bytes_copied=stats["disk_bytes"],
        duration_ms=int((time.monotonic() - began) * 1000),
    )  # fmt: skip


def _volumes(
    flow: engine.Flow, vm: records.VM, *, strategy: str, target_driver: str
) -> list[migration_common.Move]:
    todo: list[migration_common.Move] = []
    for i, d in enumerate(vm.disks):
        volume_id = d.volume_id
        if strategy == STORAGE:
            volume_id = volume_steps.new_volume(
                flow, what=f"mig-{d.name}", driver=target_driver, size=d.size, mode=d.mode
            ).volume_id
        todo.append(
            migration_common.Move(
                disk=d, target=vmrun.target(i), driver=target_driver, volume_id=volume_id
            )
        )
    return todo


def _publish(
    flow: engine.Flow, m: migration_common.Move, *, run: running.Running, to: str
) -> dict[str, Any]:
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
    todo: list[migration_common.Move],
    published: list[dict[str, Any]],
    strategy: str,
) -> dict[str, Any]:
    block = {m.target: m.disk.mode is spec.Mode.BLOCK for m in todo}
    return {
        "vm": run.domain,
        "source": run.node,
        "node": to,
        "sources": {
            m.target: {"path": p["source"], "block": block[m.target]}
            for m, p in zip(todo, published, strict=True)
        },
        "original": _original_sources(run, todo, block),
        "copy": [m.target for m in todo] if strategy == STORAGE else [],
        "console_log": str(vm_actions.launcher_dir(env, to) / "vms" / run.vm / "console.log"),
        "original_console_log": str(
            vm_actions.launcher_dir(env, run.node) / "vms" / run.vm / "console.log"
        ),
    }


def _original_sources(
    run: running.Running, todo: list[migration_common.Move], block: dict[str, bool]
) -> dict[str, dict[str, Any]]:
    """Where the guest's disks are on the source: a migration back goes there."""
    with libvirt_conn.Connection.open(run.uri) as conn:
        return {
            m.target: {
                "path": blockjobs.disk_source(conn, run.domain, target=m.target),
                "block": block[m.target],
            }
            for m in todo
        }
