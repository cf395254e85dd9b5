"""Creating, cloning, restoring and deleting VMs (their disks; running them is the launcher's)."""

from __future__ import annotations

import pathlib
import sqlite3

from csi_vm import config, errors, spec
from csi_vm.flows import clone_restore, context, diskio, engine, plans, verify, volume_steps
from csi_vm.store import records, running


def plan_create(env: context.Env, vm_spec: spec.VMSpec) -> plans.Plan:
    """Every check of a create, and its plan; changes nothing (what --dry-run runs)."""
    _check_new(env, vm_spec.name)
    _check_modes(env, vm_spec)
    result = []
    for d in vm_spec.disks:
        env.driver(d.driver)
        kind = d.source.kind
        if kind == "blank":
            result.append(
                plans.DiskPlan(
                    disk=d.name, driver=d.driver, strategy="blank", reason="new empty volume"
                )
            )
        elif kind == "image":
            _check_image(d)
            p = plans.disk_plan(env, disk=d.name, driver=d.driver, operation="disk_import")
            result.append(
                plans.DiskPlan(
                    disk=d.name,
                    driver=d.driver,
                    strategy="import",
                    reason=f"import {d.source.image} ({p.reason})",
                )
            )
        elif kind == "snapshot":
            sd = records.get_snapshot(env.store, str(d.source.snapshot)).disk(
                d.source.disk or d.name
            )
            result.append(clone_restore.restore_plan(env, sd))
        else:
            src = records.get_vm(env.store, str(d.source.vm)).disk(str(d.source.disk))
            result.append(clone_restore.clone_plan(env, src))
    return plans.Plan(operation="create", vm=vm_spec.name, disks=tuple(result))


def _check_image(d: spec.DiskSpec) -> None:
    info = diskio.inspect(pathlib.Path(str(d.source.image)))
    if info.virtual_size > d.size:
        raise errors.Rejected(
            f"disk {d.name!r}: image {d.source.image} holds {info.virtual_size} bytes, "
            f"more than the disk's size ({d.size})",
            hint=f"give the disk a size of at least {info.virtual_size} bytes",
        )


def create(env: context.Env, vm_spec: spec.VMSpec) -> plans.Plan:
    plan = plan_create(env, vm_spec)
    after: clone_restore.After = []
    with engine.Flow(
        env, kind="create", vm=vm_spec.name, args={"spec": vm_spec.model_dump(mode="json")}
    ) as flow:
        made = [_make_disk(env, flow, d, plan.strategy(d.name), after) for d in vm_spec.disks]
        rows = [_disk_row(vm_spec.name, d, v) for d, v in zip(vm_spec.disks, made, strict=True)]
        flow.commit(lambda cur: records.insert_vm(cur, vm_spec=vm_spec, disks=rows), after=after)
    return plan


def _make_disk(
    env: context.Env, flow: engine.Flow, d: spec.DiskSpec, strategy: str, after: clone_restore.After
) -> volume_steps.Vol:
    what = f"disk-{d.name}"
    kind = d.source.kind
    if kind == "blank":
        vol = volume_steps.blank(flow, what=what, driver=d.driver, size=d.size, mode=d.mode)
        verify.whole(flow, vol, what=what, answer="the volume created")
        return vol
    if kind == "image":
        vol = volume_steps.new_volume(flow, what=what, driver=d.driver, size=d.size, mode=d.mode)
        att = volume_steps.attach(flow, vol)
        volume_steps.make_image(flow, att, size=d.size)
        flow.run(
            "import",
            {"image": str(d.source.image), "dst": att.path, "size": d.size,
             "what": f"{flow.vm}: {d.name}"},
        )  # fmt: skip
        volume_steps.detach(flow, att)
        return vol
    if kind == "snapshot":
        sd = records.get_snapshot(env.store, str(d.source.snapshot)).disk(d.source.disk or d.name)
        return clone_restore.restore(flow, sd, strategy=strategy, what=what)
    src = records.get_vm(env.store, str(d.source.vm)).disk(str(d.source.disk))
    return clone_restore.clone(flow, src, strategy=strategy, what=what, after=after)


def _disk_row(vm: str, d: spec.DiskSpec, vol: volume_steps.Vol) -> records.Disk:
    return records.Disk(
        vm=vm, name=d.name, driver=d.driver, mode=d.mode, size=vol.size, volume_id=vol.volume_id
    )


def _check_new(env: context.Env, name: str) -> None:
    if records.find_vm(env.store, name) is not None:
        raise errors.AlreadyExists(
            f"a VM named {name!r} exists", hint="choose another name or delete it first"
        )


def _check_modes(env: context.Env, vm_spec: spec.VMSpec) -> None:
    for d in vm_spec.disks:
        if d.mode is spec.Mode.BLOCK and env.plan(d.driver)["disk_import"].strategy != "block":
            raise errors.Unsupported(
                f"disk {d.name!r}: driver {d.driver!r} has no block volumes",
                hint="use mode: filesystem (the disk becomes an image file on a filesystem volume)",
            )


def plan_clone(env: context.Env, *, source: str, target: str) -> plans.Plan:
    config.require_name(target, what="VM name")
    vm = records.get_vm(env.store, source)
    _check_new(env, target)
    return plans.Plan(
        operation="clone",
        vm=source,
        disks=tuple(clone_restore.clone_plan(env, d) for d in vm.disks),
        detail=f"into {target}",
    )


def clone(env: context.Env, *, source: str, target: str, verify: bool = False) -> plans.Plan:
    """`verify`: compare every block of a native clone with its source, not a sample."""
    running.require_stopped(env.store, source, what="an offline clone (use the online one)")
    plan = plan_clone(env, source=source, target=target)
    vm = records.get_vm(env.store, source)
    new_spec = spec.VMSpec.model_validate({**vm.spec.model_dump(), "name": target})
    after: clone_restore.After = []
    with engine.Flow(env, kind="clone", vm=source, args={"target": target}) as flow:
        made = [
            clone_restore.clone(
                flow,
                d,
                strategy=plan.strategy(d.name),
                what=f"{target}-{d.name}",
                after=after,
                full=verify,
            )
            for d in vm.disks
        ]
        rows = [_row(target, d, v) for d, v in zip(vm.disks, made, strict=True)]
        flow.commit(lambda cur: records.insert_vm(cur, vm_spec=new_spec, disks=rows), after=after)
    return plan


def _row(vm: str, d: records.Disk | records.SnapshotDisk, vol: volume_steps.Vol) -> records.Disk:
    name = d.name if isinstance(d, records.Disk) else d.disk
    return records.Disk(
        vm=vm, name=name, driver=vol.driver, mode=vol.mode, size=vol.size, volume_id=vol.volume_id
    )


def plan_restore(env: context.Env, *, snapshot: str, as_vm: str | None) -> plans.Plan:
    """Every check of a restore, and its plan; changes nothing (what --dry-run runs)."""
    return _checked_restore(env, snapshot=snapshot, as_vm=as_vm)[0]


def restore(env: context.Env, *, snapshot: str, as_vm: str | None) -> plans.Plan:
    plan, snap, current = _checked_restore(env, snapshot=snapshot, as_vm=as_vm)
    with engine.Flow(env, kind="restore", vm=plan.vm, args={"snapshot": snapshot}) as flow:
        _restore_steps(flow, plan=plan, snap=snap, current=current)
    return plan


def _checked_restore(
    env: context.Env, *, snapshot: str, as_vm: str | None
) -> tuple[plans.Plan, records.Snapshot, records.VM | None]:
    snap = records.get_snapshot(env.store, snapshot)
    target = as_vm or snap.vm
    in_place = as_vm is None
    current = records.find_vm(env.store, target)
    if in_place:
        running.require_stopped(env.store, target, what="restoring a snapshot in place")
    if in_place and current is None:
        raise errors.NotFound(
            f"VM {target!r} of snapshot {snapshot!r} no longer exists",
            hint="restore it with --as NAME",
        )
    if not in_place:
        config.require_name(target, what="VM name")
        _check_new(env, target)
    plan = plans.Plan(
        operation="restore",
        vm=target,
        disks=tuple(clone_restore.restore_plan(env, sd) for sd in snap.disks),
        detail=f"from {snapshot}",
    )
    return plan, snap, current if in_place else None


def _restore_steps(
    flow: engine.Flow, *, plan: plans.Plan, snap: records.Snapshot, current: records.VM | None
) -> None:
    made = [
        clone_restore.restore(flow, sd, strategy=plan.strategy(sd.disk), what=f"restore-{sd.disk}")
        for sd in snap.disks
    ]
    rows = [_row(plan.vm, sd, v) for sd, v in zip(snap.disks, made, strict=True)]
    if current is not None:  # in place
        old = [volume_steps.retire(_vol(d)) for d in current.disks]
        flow.commit(lambda cur: _swap(cur, current, rows), after=old)
    else:
        new_spec = snap.vm_spec.model_copy(update={"name": plan.vm})
        flow.commit(lambda cur: records.insert_vm(cur, vm_spec=new_spec, disks=rows))


def _swap(cur: sqlite3.Cursor, vm: records.VM, rows: list[records.Disk]) -> None:
    """Point the VM's disks at the restored volumes, in one transaction."""
    records.delete_vm(cur, vm.name)
    records.insert_vm(cur, vm_spec=vm.spec, disks=rows)


def _vol(d: records.Disk) -> volume_steps.Vol:
    return volume_steps.Vol(driver=d.driver, volume_id=d.volume_id, mode=d.mode, size=d.size)


def delete(env: context.Env, *, name: str) -> records.VM:
    vm = records.get_vm(env.store, name)
    running.require_stopped(env.store, name, what="deleting it")
    with engine.Flow(env, kind="delete", vm=name, args={}) as flow:
        flow.commit(
            lambda cur: records.delete_vm(cur, name),
            after=[volume_steps.retire(_vol(d)) for d in vm.disks],
        )
    return vm
