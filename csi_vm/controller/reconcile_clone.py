"""CsiVMClone: a new VM whose disks start as copies of another VM's disks.

csi-clone: a PVC whose dataSource is the source PVC. snapshot-restore: a
temporary VolumeSnapshot, then a PVC from it. host-copy: a blank PVC and a
copy Job. When every disk is ready, the target CsiVM is created on
those claims.

With count and nameTemplate (`clone_fanout`), each of the named VMs is made
that way, on its own: the strategy is chosen once for all of them, a
snapshot-restore fan-out restores every clone from one temporary snapshot
per disk, and the status lists each clone as Pending, Ready or Failed.
"""

from __future__ import annotations

import dataclasses

from capabilities import model
from csi_vm import errors
from csi_vm.controller import (
    clone_fanout,
    context,
    diskops,
    snapclass,
    storage,
    vmobjects,
    volumemode,
)
from csi_vm.crd import kinds, rules, status
from csi_vm.crd import models as crd

Json = context.Json
OPERATION = "vm_clone"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Source:
    """What every clone of one CsiVMClone is made from, and by what strategy per disk."""

    name: str
    spec: crd.VMSpec
    node: str
    namespace: str
    owner: Json
    choices: dict[str, model.Choice]
    #: each disk's claim mode, read once for all clones
    modes: dict[str, crd.VolumeMode]
    #: with a fan-out, the one temporary snapshot per disk all restores share
    shared_snapshot: str = ""


def reconcile(ctx: context.Context, obj: Json) -> None:
    if context.finished(obj):
        return
    meta = crd.meta(obj)
    wanted = clone_fanout.targets(obj)
    try:
        source = ctx.objs.get(kinds.VM, wanted.source, namespace=meta.namespace)
    except errors.NotFound:
        context.refuse(
            ctx,
            kinds.CLONE,
            obj,
            reason="VMNotFound",
            message=f"source CsiVM {wanted.source} does not exist",
        )
        return
    if not wanted.fan_out and (taken := vmobjects.target_taken(ctx, obj, name=wanted.names[0])):
        context.refuse(ctx, kinds.CLONE, obj, reason="TargetExists", message=taken)
        return
    source_spec = crd.spec(source, crd.VMSpec)
    obj, choices = diskops.decide_by_class(
        ctx, kinds.CLONE, obj, operation=OPERATION, disks=source_spec.disks
    )
    src = _Source(
        name=wanted.source,
        spec=source_spec,
        node=rules.assigned_node(source),
        namespace=meta.namespace,
        owner=storage.owner_of(obj),
        choices=choices,
        modes={
            d.name: volumemode.of_source(
                ctx.objs,
                claim=d.claim_of(wanted.source),
                namespace=meta.namespace,
                fallback=d.volume_mode,
            )
            for d in source_spec.disks
        },
        shared_snapshot=f"{meta.name}-{{disk}}-fanout-tmp" if wanted.fan_out else "",
    )
    if wanted.fan_out:
        _many(ctx, obj, src, names=wanted.names)
    else:
        _one(ctx, obj, src, name=wanted.names[0])


def _one(ctx: context.Context, obj: Json, src: _Source, *, name: str) -> None:
    results = _disks(ctx, src, target_vm=name)
    state = diskops.overall(results)
    diskops.conclude(
        ctx,
        kinds.CLONE,
        obj,
        operation=OPERATION,
        results=results,
        extra={
            "done": int(state is storage.Progress.READY),
            "failed": int(state is storage.Progress.FAILED),
        },
        on_ready=lambda: vmobjects.ensure_vm(
            ctx, maker=obj, name=name, namespace=src.namespace, like=src.spec, results=results
        ),
    )


def _many(ctx: context.Context, obj: Json, src: _Source, *, names: tuple[str, ...]) -> None:
    """Each clone on its own; those the status already settled are left as they are."""
    known = clone_fanout.settled(obj)
    clones = [known.get(name) or _each(ctx, obj, src, name=name) for name in names]
    state = clone_fanout.overall(clones)
    fields, message = clone_fanout.summary(clones)
    gen = crd.meta(obj).generation
    ready = status.condition(
        status.READY,
        ok=state is storage.Progress.READY,
        reason=state.value,
        message=message,
        generation=gen,
    )
    disks = [{"name": d, **status.strategy_fields(OPERATION, c)} for d, c in src.choices.items()]
    _announce_end(ctx, obj, src, state=state, message=message)
    context.write_status(
        ctx,
        kinds.CLONE,
        obj,
        fields={"phase": state.value, "disks": disks, **fields},
        conditions=[ready],
    )


def _each(ctx: context.Context, obj: Json, src: _Source, *, name: str) -> clone_fanout.Clone:
    """One clone of a fan-out: a step further, or why it failed."""
    target = vmobjects.target_state(ctx, obj, name=name)
    if target is vmobjects.Target.OURS:
        return clone_fanout.Clone(name, storage.Progress.READY)  # made on an earlier pass
    if target is vmobjects.Target.TAKEN:
        return clone_fanout.Clone(name, storage.Progress.FAILED, vmobjects.taken_message(name))
    try:
        results = _disks(ctx, src, target_vm=name)
    except errors.AlreadyExists as err:  # a claim of its name that is someone else's
        return clone_fanout.Clone(name, storage.Progress.FAILED, str(err))
    state = diskops.overall(results)
    if state is storage.Progress.READY:
        vmobjects.ensure_vm(
            ctx, maker=obj, name=name, namespace=src.namespace, like=src.spec, results=results
        )
    failed = "; ".join(
        f"disk {r.disk}: {r.progress.value}"
        for r in results
        if r.progress is storage.Progress.FAILED
    )
    return clone_fanout.Clone(name, state, failed)


def _announce_end(
    ctx: context.Context, obj: Json, src: _Source, *, state: storage.Progress, message: str
) -> None:
    """An Event and the operation metric, once, when a fan-out reaches its end."""
    if state is storage.Progress.PENDING or (obj.get("status") or {}).get("phase") == state.value:
        return
    strategy = "+".join(sorted({c.strategy for c in src.choices.values()})) or "none"
    ok = state is storage.Progress.READY
    ctx.metrics.operation(
        operation=OPERATION,
        strategy=strategy,
        result="success" if ok else "failure",
        seconds=context.age_seconds(ctx, obj),
    )
    ctx.events.record(
        obj,
        reason="Succeeded" if ok else "Failed",
        message=f"{OPERATION} fan-out by {strategy}: {message}",
        warning=not ok,
    )


def _disks(ctx: context.Context, src: _Source, *, target_vm: str) -> list[diskops.DiskResult]:
    return [_disk(ctx, disk, src=src, target_vm=target_vm) for disk in src.spec.disks]


def _disk(
    ctx: context.Context, disk: crd.Disk, *, src: _Source, target_vm: str
) -> diskops.DiskResult:
    claim_name = disk.claim_of(src.name)
    choice = src.choices[disk.name]
    mode = src.modes[disk.name]
    target = storage.Target(
        name=f"{target_vm}-{disk.name}",
        namespace=src.namespace,
        size=disk.size,
        storage_class=disk.storage_class,
        owner=src.owner,
        annotations=storage.explain(OPERATION, choice),
        mode=mode,
    )
    if choice.strategy == "csi-clone":
        progress = _claim(ctx, target, storage.claim_source(claim_name))
    elif choice.strategy == "snapshot-restore":
        snapshot = src.shared_snapshot.format(disk=disk.name) or f"{target.name}-tmp"
        progress = _via_snapshot(ctx, target, source_claim=claim_name, snapshot=snapshot)
    else:
        progress = vmobjects.host_copy(
            ctx, target, source_claim=claim_name, source_mode=mode, node=src.node
        )
    return diskops.DiskResult(
        disk=disk.name,
        choice=choice,
        kind="PersistentVolumeClaim",
        name=target.name,
        size=disk.size,
        storage_class=disk.storage_class,
        mode=mode,
        progress=progress,
    )


def _claim(ctx: context.Context, target: storage.Target, source: Json) -> storage.Progress:
    made = storage.ensure(ctx.objs, kinds.PVC, storage.claim(target, data_source=source))
    waits = storage.first_consumer_binds(ctx.objs, target.storage_class)
    return storage.claim_progress(made, first_consumer_binds=waits)


def _via_snapshot(
    ctx: context.Context, target: storage.Target, *, source_claim: str, snapshot: str
) -> storage.Progress:
    snap_target = dataclasses.replace(target, name=snapshot)
    snap = storage.ensure(
        ctx.objs,
        kinds.VOLUME_SNAPSHOT,
        storage.volume_snapshot(
            snap_target,
            source_claim=source_claim,
            snapshot_class=snapclass.for_storage_class(ctx, target.storage_class),
        ),
    )
    progress = storage.snapshot_progress(snap)
    if progress is not storage.Progress.READY:
        return progress
    return _claim(ctx, target, storage.snapshot_source(snap_target.name))
