"""Snapshot and expansion of a running VM's disks.

Snapshot: CSI snapshots taken while the guest's filesystems are frozen by its
qemu guest agent (thawed in `finally`, also on errors, and by `resume` after a
kill); without an agent, or when its freeze fails or times out (then thawed
at once), the snapshot is crash-consistent and says so, and why. A failed
freeze that no thaw answered after (the guest may still be frozen) rolls the
snapshot back. A driver without CSI snapshots gets a libvirt push backup
into a new volume: qemu copies the disk as it was when the backup began while
the guest keeps writing. Either kind is listed, restored and deleted like an
offline snapshot.

Expansion: CSI controller + node expansion, then `blockResize` so the guest
sees the new size. Without CSI expansion: a block copy into a new, larger
volume and pivot; after the commit `blockResize` and the old volume retired.
A CSI expansion the VM's node does not show takes the block copy too (an
expansion cannot be undone), and the plan says why.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time

from csi_vm import config, errors, spec
from csi_vm.flows import (
    context,
    engine,
    plans,
    snapshots,
    verify,
    vm_actions,
    vmrun,
    vms,
    volume_actions,
    volume_steps,
)
from csi_vm.store import records, running
from launcher import blockjobs, libvirt_conn

CRASH_CONSISTENT = "crash-consistent"
FS_FROZEN = "filesystems frozen by the guest agent"


@dataclasses.dataclass(frozen=True, kw_only=True)
class SnapshotResult:
    snapshot: records.Snapshot
    plan: plans.Plan
    consistency: str
    why: str  # what the guest agent did, or why it did not freeze


def _online_strategy(p: plans.DiskPlan) -> plans.DiskPlan:
    if p.strategy == "host-copy":
        reason = "no CSI snapshots: libvirt push backup into a new volume, point-in-time"
        return dataclasses.replace(p, strategy="backup", reason=reason)
    if p.strategy == "csi-group-snapshot":
        # With an agent, one freeze spans them all; without one, each disk is
        # crash-consistent on its own, a moment apart from the others.
        reason = "CSI snapshot of each disk, all inside one guest-agent freeze when there is one"
        return dataclasses.replace(p, strategy="csi-snapshot", reason=reason)
    return p


def plan_snapshot(env: context.Env, vm: records.VM) -> plans.Plan:
    base = snapshots.plan_create(env, vm)
    return dataclasses.replace(base, disks=tuple(_online_strategy(p) for p in base.disks))


class _FreezeUnknown(errors.Unreachable):
    """The freeze and every thaw after it went unanswered: see `_refuse_unknown_freeze`."""


def snapshot(env: context.Env, *, vm_name: str, name: str | None) -> SnapshotResult:
    try:
        return _snapshot(env, vm_name=vm_name, name=name)
    except _FreezeUnknown as err:
        # Only a finished rollback lets it through (else `engine.Pending`):
        # the rollback's own thaw answered.
        raise errors.Unreachable(
            f"{err.message}; the rollback's thaw answered after that: the guest is thawed",
            hint="take the snapshot again",
        ) from err


def _snapshot(env: context.Env, *, vm_name: str, name: str | None) -> SnapshotResult:
    run = running.get(env.store, vm_name)
    vm = records.get_vm(env.store, vm_name)
    snap_name = _snapshot_name(env, vm_name, name)
    plan = plan_snapshot(env, vm)
    with engine.Flow(env, kind="online-snapshot", vm=vm_name, args={"name": snap_name}) as flow:
        targets = {d.name: vmrun.target(i) for i, d in enumerate(vm.disks)}
        backups = _prepare_backups(flow, vm, plan, node=run.node)
        guest = {"vm": run.domain, "node": run.node}
        # Journaled, so that a guest frozen by a process that died is thawed by resume.
        froze = flow.run("freeze", guest)
        _refuse_unknown_freeze(vm_name, froze)
        frozen = bool(froze["frozen"])
        try:
            taken = {
                d.name: _csi_snapshot(flow, d)
                for d in vm.disks
                if plan.strategy(d.name) == "csi-snapshot"
            }
            if backups:  # a backup's point in time is its start: inside the freeze
                _backup_begin(flow, vm, backups, run=run, targets=targets)
        finally:
            if frozen:
                flow.run("thaw", guest)
        if backups:
            flow.run("backup_wait", {"vm": run.domain, "node": run.node})
        for d in vm.disks:
            if d.name in backups:
                taken[d.name] = _backup_done(flow, d, backups[d.name])
        snap = records.Snapshot(
            name=snap_name, vm=vm_name, vm_spec=vm.spec, created=time.time(),
            disks=tuple(taken[d.name] for d in vm.disks),
        )  # fmt: skip
        flow.commit(lambda cur: records.insert_snapshot(cur, snap))
    consistency = FS_FROZEN if frozen else CRASH_CONSISTENT
    return SnapshotResult(
        snapshot=snap, plan=plan, consistency=consistency, why=str(froze.get("why", ""))
    )


def _refuse_unknown_freeze(vm: str, froze: dict[str, object]) -> None:
    """No snapshot while the guest may be frozen: the flow rolls back, and its
    rollback thaws it, or stays pending until `resume` can."""
    if froze.get("state") == blockjobs.UNKNOWN:
        raise _FreezeUnknown(
            f"VM {vm}: no snapshot taken: {froze['why']}",
            hint="`csi-vm resume` thaws it once its agent answers",
        )


def _snapshot_name(env: context.Env, vm: str, name: str | None) -> str:
    if name is not None:
        config.require_name(name, what="snapshot name")
    snap_name = name or f"{vm}-{time.strftime('%Y%m%d-%H%M%S')}"
    if records.find_snapshot(env.store, snap_name) is not None:
        raise errors.AlreadyExists(f"a snapshot named {snap_name!r} exists")
    return snap_name


def _vol(d: records.Disk) -> volume_steps.Vol:
    return volume_steps.Vol(driver=d.driver, volume_id=d.volume_id, mode=d.mode, size=d.size)


def _csi_snapshot(flow: engine.Flow, d: records.Disk) -> records.SnapshotDisk:
    data = {
        "driver": d.driver,
        "name": flow.name(f"snap-{d.name}"),
        "source_volume_id": d.volume_id,
    }
    snapshot_id = flow.run("create_snapshot", data)["snapshot_id"]
    return _snap_disk(d, strategy="csi-snapshot", object_id=snapshot_id)


def _snap_disk(d: records.Disk, *, strategy: str, object_id: str) -> records.SnapshotDisk:
    return records.SnapshotDisk(
        disk=d.name, driver=d.driver, mode=d.mode, size=d.size, strategy=strategy,
        object_id=object_id,
    )  # fmt: skip


def _prepare_backups(
    flow: engine.Flow, vm: records.VM, plan: plans.Plan, *, node: str
) -> dict[str, volume_steps.Attached]:
    """New volumes for the backups, published on the VM's node (before any freeze)."""
    prepared = {}
    for d in vm.disks:
        if plan.strategy(d.name) == "backup":
            vol = volume_steps.new_volume(
                flow, what=f"snap-{d.name}", driver=d.driver, size=d.size, mode=d.mode
            )
            att = volume_steps.attach(flow, vol, node=node)
            volume_steps.make_image(flow, att, size=d.size)
            prepared[d.name] = att
    return prepared


def _backup_begin(
    flow: engine.Flow,
    vm: records.VM,
    backups: dict[str, volume_steps.Attached],
    *,
    run: running.Running,
    targets: dict[str, str],
) -> None:
    disks = [
        {"target": targets[d.name], "dest": backups[d.name].path,
         "block": d.mode is spec.Mode.BLOCK}
        for d in vm.disks
        if d.name in backups
    ]  # fmt: skip
    flow.run("backup_begin", {"vm": run.domain, "node": run.node, "disks": disks})


def _backup_done(
    flow: engine.Flow, d: records.Disk, att: volume_steps.Attached
) -> records.SnapshotDisk:
    volume_steps.detach(flow, att)
    # A backup volume is a host copy in all but name: restored and deleted as one.
    return _snap_disk(d, strategy="host-copy", object_id=att.vol.volume_id)


# -- expansion ---------------------------------------------------------------------


def plan_expand(env: context.Env, *, vm: str, disk: str, size: int) -> plans.Plan:
    d = records.get_vm(env.store, vm).disk(disk)
    if size <= d.size:
        raise errors.Rejected(f"disk {vm}/{disk} is {d.size} bytes; disks only grow")
    p = plans.disk_plan(env, disk=disk, driver=d.driver, operation="disk_expand")
    if p.strategy == "copy-to-larger":
        reason = "no CSI expansion: block copy into a new, larger volume, then pivot"
        p = dataclasses.replace(p, strategy="block-copy", reason=reason)
    detail = f"{d.size} -> {size} bytes, online"
    return plans.Plan(operation="expand", vm=vm, disks=(p,), detail=detail)


def expand(env: context.Env, *, vm: str, disk: str, size: int) -> plans.Plan:
    run = running.get(env.store, vm)
    vm_rec = records.get_vm(env.store, vm)
    d = vm_rec.disk(disk)
    plan = plan_expand(env, vm=vm, disk=disk, size=size)
    target = vmrun.target([x.name for x in vm_rec.disks].index(disk))
    args = {"disk": disk, "size": size, "node": run.node}
    with engine.Flow(env, kind="online-expand", vm=vm, args=args) as flow:
        if plan.strategy(disk) == "csi-expand":
            short = _expand_in_place(flow, d, run=run, target=target, size=size)
            if not short:
                flow.commit(lambda cur: _resize_record(cur, d, volume_id=d.volume_id, size=size))
                return plan
            records.forget_caps(env.store, d.driver)
            why = f"{short}; expansions cannot be undone, so a block copy into a new volume"
            fallen = dataclasses.replace(plan.disks[0], strategy="block-copy", reason=why)
            plan = dataclasses.replace(plan, disks=(fallen,))
        new, entry = _copy_to_larger(flow, d, run=run, target=target, size=size)
        old_entry = _record_entry(env, run, d, target)
        # The pivot is the switch: until the commit a rollback copies the
        # disk back onto the old volume, which only works at the old size;
        # so the guest is shown the new size after the commit.
        resize = {"vm": run.domain, "node": run.node, "target": target, "size": size}
        flow.commit(
            lambda cur: _resize_record(cur, d, volume_id=new.volume_id, size=size),
            after=[
                ("block_resize", resize),
                ("adopt_disk", {**_on(run, d), "entry": entry}),
                ("release_disk", {**_on(run, d), "entry": old_entry}),
                volume_steps.retire(_vol(d)),
            ],
        )
    return plan


def _on(run: running.Running, d: records.Disk) -> dict[str, str]:
    return {"vm": run.domain, "node": run.node, "driver": d.driver}


def _resize_record(cur: sqlite3.Cursor, d: records.Disk, *, volume_id: str, size: int) -> None:
    records.replace_disk_volume(cur, vm=d.vm, disk=d.name, volume_id=volume_id, size=size)


def _expand_in_place(
    flow: engine.Flow, d: records.Disk, *, run: running.Running, target: str, size: int
) -> str:
    """Expand through CSI; why the VM's node does not show it, or "" (then the guest sees it)."""
    data = {"driver": d.driver, "volume_id": d.volume_id, "size": size, "mode": d.mode.value}
    result = flow.run("expand_volume", data)
    if result.get("node_expansion") or d.mode is spec.Mode.FILESYSTEM:
        flow.run(
            "node_expand",
            {**_on(run, d), "target": target, "volume_id": d.volume_id, "mode": d.mode.value,
             "volume_size": volume_actions.volume_size(size, d.mode.value)},
        )  # fmt: skip
    seen = flow.run("measure_vm_disk", {**_on(run, d), "target": target, "mode": d.mode.value})
    growth = verify.Growth(
        device=seen.get("device"),
        filesystem=seen.get("filesystem"),
        wanted=volume_actions.volume_size(size, d.mode.value),
    )
    if short := growth.shortfall(size):
        return f"ControllerExpandVolume answered {result['capacity']} bytes, but {short}"
    flow.run("block_resize", {"vm": run.domain, "node": run.node, "target": target, "size": size})
    return ""


def _copy_to_larger(
    flow: engine.Flow, d: records.Disk, *, run: running.Running, target: str, size: int
) -> tuple[volume_steps.Vol, dict[str, object]]:
    new = volume_steps.new_volume(
        flow, what=f"grow-{d.name}", driver=d.driver, size=size, mode=d.mode
    )
    spare = flow.run(
        "publish_spare",
        {**_on(run, d), "volume_id": new.volume_id, "mode": d.mode.value, "target": target,
         "slot": f"{target}-{flow.id}"},
    )  # fmt: skip
    if d.mode is spec.Mode.FILESYSTEM:
        flow.run("make_image", {"target": spare["source"].rsplit("/", 1)[0], "size": size})
    # where the guest reads now: the undo of a pivot copies back to it
    old_source = _old_source(flow.env, run, target)
    flow.run(
        "pivot",
        {"vm": run.domain, "node": run.node, "target": target, "dest": spare["source"],
         "block": d.mode is spec.Mode.BLOCK, "old": old_source},
    )  # fmt: skip
    return new, spare["entry"]


def _record_entry(
    env: context.Env, run: running.Running, d: records.Disk, target: str
) -> dict[str, object]:
    with vm_actions.launcher(env, node_name=run.node, driver=d.driver) as on:
        return dataclasses.asdict(on.disk_record(run.domain, target))


def _old_source(env: context.Env, run: running.Running, target: str) -> str:
    with libvirt_conn.Connection.open(run.uri) as conn:
        return blockjobs.disk_source(conn, run.domain, target=target)


# -- clone -------------------------------------------------------------------------


def clone(env: context.Env, *, source: str, target: str) -> plans.Plan:
    """Clone a running VM from an online snapshot (point-in-time, as `snapshot` is).

    The snapshot is temporary: deleted once the clone exists, or after a failure.
    """
    config.require_name(target, what="VM name")
    if records.find_vm(env.store, target) is not None:
        raise errors.AlreadyExists(f"a VM named {target!r} exists")
    temp = f"{source}-clone-{time.strftime('%Y%m%d%H%M%S')}"[:63].rstrip("-._")
    taken = snapshot(env, vm_name=source, name=temp)
    try:
        restored = vms.restore(env, snapshot=temp, as_vm=target)
    finally:
        snapshots.delete(env, name=temp)
    detail = f"into {target}, from an online snapshot ({taken.consistency})"
    return dataclasses.replace(restored, operation="clone", vm=source, detail=detail)
