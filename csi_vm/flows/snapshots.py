"""VM snapshots: CSI snapshots (a group snapshot where one fits) or host copies.

A host-copy snapshot is a volume holding a copy of the disk; it lists,
restores and deletes exactly like a native one. A CSI snapshot's data can only
be read by restoring it: where the driver restores, each new snapshot is
restored once into a scratch volume and compared with its disk (`verify`), and
the sampled blocks of that restore are recorded as the snapshot disk's
fingerprint, which every later restore is compared with.
"""

from __future__ import annotations

import collections
import time

from capabilities import model
from csi_vm import config, errors
from csi_vm.flows import context, engine, plans, verify, volume_steps
from csi_vm.store import records, running

F = model.Feature


def plan_create(env: context.Env, vm: records.VM) -> plans.Plan:
    disks = []
    grouped = _grouped_drivers(env, vm)
    for disk in vm.disks:
        p = plans.disk_plan(env, disk=disk.name, driver=disk.driver, operation="vm_snapshot")
        if p.strategy == "csi-snapshot" and disk.driver in grouped:
            p = plans.DiskPlan(
                disk=disk.name,
                driver=disk.driver,
                strategy="csi-group-snapshot",
                reason=f"one group snapshot of the VM's {grouped[disk.driver]} disks "
                "on this driver (consistent across them)",
            )
        disks.append(p)
    return plans.Plan(operation="snapshot", vm=vm.name, disks=tuple(disks))


def _grouped_drivers(env: context.Env, vm: records.VM) -> dict[str, int]:
    counts = collections.Counter(d.driver for d in vm.disks)
    return {
        drv: n
        for drv, n in counts.items()
        if n > 1
        and env.works(drv, F.GROUP_SNAPSHOT)
        and env.plan(drv)["vm_snapshot"].strategy == "csi-snapshot"
    }


def create(
    env: context.Env, *, vm_name: str, name: str | None, verify: bool = False
) -> tuple[records.Snapshot, plans.Plan]:
    """`verify`: compare every block of each CSI snapshot's trial restore, not a sample."""
    vm = records.get_vm(env.store, vm_name)
    running.require_stopped(env.store, vm_name, what="an offline snapshot (use the online one)")
    snap_name = checked_name(env, vm=vm.name, name=name)
    plan = plan_create(env, vm)
    with engine.Flow(env, kind="snapshot", vm=vm.name, args={"name": snap_name}) as flow:
        taken = _take(flow, vm, plan, full=verify)
        snap = records.Snapshot(
            name=snap_name, vm=vm.name, vm_spec=vm.spec, created=time.time(), disks=tuple(taken)
        )
        flow.commit(lambda cur: records.insert_snapshot(cur, snap))
    return snap, plan


def _take(
    flow: engine.Flow, vm: records.VM, plan: plans.Plan, *, full: bool = False
) -> list[records.SnapshotDisk]:
    by_disk: dict[str, records.SnapshotDisk] = {}
    groups = collections.defaultdict(list)
    for disk in vm.disks:
        if plan.strategy(disk.name) == "csi-group-snapshot":
            groups[disk.driver].append(disk)
    for driver, disks in groups.items():
        result = flow.run(
            "create_group_snapshot",
            {
                "driver": driver,
                "name": flow.name(f"group-{driver}"),
                "volume_ids": [d.volume_id for d in disks],
            },
        )
        for d in disks:
            snapshot_id = result["snapshot_ids"][d.volume_id]
            fp = _check(flow, d, snapshot_id, full=full)
            by_disk[d.name] = _record(d, "csi-snapshot", snapshot_id, result["group_id"], fp)
    for disk in vm.disks:
        strategy = plan.strategy(disk.name)
        if strategy == "csi-snapshot":
            snapshot_id = volume_steps.snapshot(
                flow, what=f"snap-{disk.name}", driver=disk.driver, volume_id=disk.volume_id
            )
            fp = _check(flow, disk, snapshot_id, full=full)
            by_disk[disk.name] = _record(disk, strategy, snapshot_id, fingerprint=fp)
        elif strategy == "host-copy":
            src = volume_steps.Vol(
                driver=disk.driver, volume_id=disk.volume_id, mode=disk.mode, size=disk.size
            )
            copy = volume_steps.host_copy(
                flow,
                what=f"snap-{disk.name}",
                src=src,
                driver=disk.driver,
                size=disk.size,
                mode=disk.mode,
            )
            by_disk[disk.name] = _record(disk, strategy, copy.volume_id)
    return [by_disk[d.name] for d in vm.disks]


def _check(flow: engine.Flow, disk: records.Disk, snapshot_id: str, *, full: bool) -> str:
    """Restore the new snapshot into a scratch volume and compare it with the (stopped) disk.

    Returns the restore's fingerprint, "" where the snapshot cannot be read here.
    """
    if not flow.env.works(disk.driver, F.RESTORE_FROM_SNAPSHOT):
        return ""  # nothing can read the snapshot here; a later restore checks its size
    src = volume_steps.Vol(
        driver=disk.driver, volume_id=disk.volume_id, mode=disk.mode, size=disk.size
    )
    trial = volume_steps.new_volume(
        flow,
        what=f"check-{disk.name}",
        driver=disk.driver,
        size=disk.size,
        mode=disk.mode,
        source_snapshot_id=snapshot_id,
    )
    what = f"snapshot of {disk.name}"
    fp = verify.same_data(
        flow,
        src=src,
        new=trial,
        what=what,
        answer="the snapshot ready",
        full=full,
        fingerprint=True,
    )
    flow.run("delete_volume", {"driver": disk.driver, "volume_id": trial.volume_id})
    return fp


def _record(
    disk: records.Disk, strategy: str, object_id: str, group_id: str = "", fingerprint: str = ""
) -> records.SnapshotDisk:
    return records.SnapshotDisk(
        disk=disk.name,
        driver=disk.driver,
        mode=disk.mode,
        size=disk.size,
        strategy=strategy,
        object_id=object_id,
        group_id=group_id,
        fingerprint=fingerprint,
    )


def delete(env: context.Env, *, name: str) -> records.Snapshot:
    snap = records.get_snapshot(env.store, name)
    with engine.Flow(env, kind="snapshot-delete", vm=snap.vm, args={"name": name}) as flow:
        flow.commit(lambda cur: records.delete_snapshot(cur, name), after=removal_steps(snap))
    return snap


def checked_name(env: context.Env, *, vm: str, name: str | None) -> str:
    """The new snapshot's name (given, or the VM's and the time), refused if taken or malformed."""
    if name is not None:
        config.require_name(name, what="snapshot name")
    snap_name = name or f"{vm}-{time.strftime('%Y%m%d-%H%M%S')}"
    if records.find_snapshot(env.store, snap_name) is not None:
        raise errors.AlreadyExists(
            f"a snapshot named {snap_name!r} exists", hint="choose another --name"
        )
    return snap_name


def removal_steps(snap: records.Snapshot) -> list[tuple[str, dict[str, object]]]:
    """Tidy-up steps that delete a snapshot's objects (run after its record is gone)."""
    after: list[tuple[str, dict[str, object]]] = []
    groups: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for d in snap.disks:
        if d.strategy == "host-copy":
            after.append(("delete_volume", {"driver": d.driver, "volume_id": d.object_id}))
        elif d.group_id:
            groups[(d.driver, d.group_id)].append(d.object_id)
        else:
            after.append(("delete_snapshot", {"driver": d.driver, "snapshot_id": d.object_id}))
    for (driver, group_id), ids in groups.items():
        after.append(
            ("delete_group_snapshot", {"driver": driver, "group_id": group_id, "snapshot_ids": ids})
        )
    return after
