"""CsiVMClone: a new VM whose disks start as copies of another VM's disks.

csi-clone: a PVC whose dataSource is the source PVC. snapshot-restore: a
temporary VolumeSnapshot, then a PVC from it. host-copy: a blank PVC and a
copy Job. When every disk is ready, the target CsiVM is created on
those claims.
"""

from __future__ import annotations

import dataclasses

from capabilities import model
from csi_vm import errors
from csi_vm.controller import (
    context,
    diskops,
    snapclass,
    storage,
    vmobjects,
    volumemode,
)
from csi_vm.crd import kinds, rules
from csi_vm.crd import models as crd

Json = context.Json
OPERATION = "vm_clone"


def reconcile(ctx: context.Context, obj: Json) -> None:
    if context.finished(obj):
        return
    meta = crd.meta(obj)
    spec = crd.spec(obj, crd.CloneSpec)
    try:
        source = ctx.objs.get(kinds.VM, spec.source, namespace=meta.namespace)
    except errors.NotFound:
        context.refuse(
            ctx,
            kinds.CLONE,
            obj,
            reason="VMNotFound",
            message=f"source CsiVM {spec.source} does not exist",
        )
        return
    taken = vmobjects.target_taken(ctx, obj, name=spec.target)
    if taken:
        context.refuse(ctx, kinds.CLONE, obj, reason="TargetExists", message=taken)
        return
    source_spec = crd.spec(source, crd.VMSpec)
    obj, choices = diskops.decide_by_class(
        ctx, kinds.CLONE, obj, operation=OPERATION, disks=source_spec.disks
    )
    owner = storage.owner_of(obj)
    results = [
        _disk(
            ctx,
            disk,
            choice=choices[disk.name],
            source=spec.source,
            node=rules.assigned_node(source),
            target_vm=spec.target,
            namespace=meta.namespace,
            owner=owner,
        )
        for disk in source_spec.disks
    ]
    diskops.conclude(
        ctx,
        kinds.CLONE,
        obj,
        operation=OPERATION,
        results=results,
        on_ready=lambda: vmobjects.ensure_vm(
            ctx,
            maker=obj,
            name=spec.target,
            namespace=meta.namespace,
            like=source_spec,
            results=results,
        ),
    )


def _disk(
    ctx: context.Context,
    disk: crd.Disk,
    *,
    choice: model.Choice,
    source: str,
    node: str,
    target_vm: str,
    namespace: str,
    owner: Json,
) -> diskops.DiskResult:
    claim_name = disk.claim_of(source)
    mode = volumemode.of_source(
        ctx.objs, claim=claim_name, namespace=namespace, fallback=disk.volume_mode
    )
    target = storage.Target(
        name=f"{target_vm}-{disk.name}",
        namespace=namespace,
        size=disk.size,
        storage_class=disk.storage_class,
        owner=owner,
        annotations=storage.explain(OPERATION, choice),
        mode=mode,
    )
    if choice.strategy == "csi-clone":
        progress = _claim(ctx, target, storage.claim_source(claim_name))
    elif choice.strategy == "snapshot-restore":
        progress = _via_snapshot(ctx, target, source_claim=claim_name)
    else:
        progress = vmobjects.host_copy(
            ctx, target, source_claim=claim_name, source_mode=mode, node=node
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
    ctx: context.Context, target: storage.Target, *, source_claim: str
) -> storage.Progress:
    snap_target = dataclasses.replace(target, name=f"{target.name}-tmp")
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
