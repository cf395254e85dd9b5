"""CsiVMSnapshot: a point-in-time copy of every disk of a VM.

csi-snapshot: a VolumeSnapshot per disk. host-copy: a new PVC per disk and
a Job that copies the disk into it (the VM should be stopped or frozen for a
consistent copy; the node agent quiesces running guests). Each disk's status
records its claim's volumeMode, which a restore gives its new claim.
"""

from __future__ import annotations

from capabilities import model
from csi_vm import errors
from csi_vm.controller import (
    context,
    diskops,
    online,
    online_backup,
    snapclass,
    storage,
    vmobjects,
    volumemode,
)
from csi_vm.crd import kinds, onlinesnap, rules
from csi_vm.crd import models as crd

Json = context.Json
OPERATION = "vm_snapshot"


def reconcile(ctx: context.Context, obj: Json) -> None:
    if context.finished(obj):
        return
    meta = crd.meta(obj)
    spec = crd.spec(obj, crd.SnapshotSpec)
    try:
        vm = ctx.objs.get(kinds.VM, spec.vm, namespace=meta.namespace)
    except errors.NotFound:
        context.refuse(
            ctx,
            kinds.SNAPSHOT,
            obj,
            reason="VMNotFound",
            message=f"CsiVM {spec.vm} does not exist",
        )
        return
    vm_spec = crd.spec(vm, crd.VMSpec)
    obj, choices = diskops.decide_by_class(
        ctx, kinds.SNAPSHOT, obj, operation=OPERATION, disks=vm_spec.disks
    )
    owner = storage.owner_of(obj)
    node = rules.assigned_node(vm)
    csi = [d.name for d in vm_spec.disks if choices[d.name].strategy == "csi-snapshot"]
    gate = online.gate(ctx, obj, vm=vm, disks=csi) if csi else online.OPEN
    copies = [
        onlinesnap.volume_snapshot_name(meta.name, d.name)
        for d in vm_spec.disks
        if choices[d.name].strategy in onlinesnap.COPIES
    ]
    backup = online_backup.gate(ctx, obj, vm=vm, claims=copies) if copies else online_backup.OFFLINE
    if backup.online:
        choices = online_backup.chosen(choices)
    results = [
        _disk(
            ctx,
            disk,
            choice=choices[disk.name],
            vm=spec.vm,
            node=node,
            snap=meta,
            obj=obj,
            snapshot_class=spec.snapshot_class,
            owner=owner,
            gate=gate,
            backup=backup,
        )
        for disk in vm_spec.disks
    ]
    diskops.conclude(ctx, kinds.SNAPSHOT, obj, operation=OPERATION, results=results)


def _disk(
    ctx: context.Context,
    disk: crd.Disk,
    *,
    choice: model.Choice,
    vm: str,
    node: str,
    snap: crd.Meta,
    obj: Json,
    snapshot_class: str,
    owner: Json,
    gate: online.Gate,
    backup: online_backup.Backup,
) -> diskops.DiskResult:
    source = disk.claim_of(vm)
    mode = volumemode.of_source(
        ctx.objs, claim=source, namespace=snap.namespace, fallback=disk.volume_mode
    )
    target = storage.Target(
        name=onlinesnap.volume_snapshot_name(snap.name, disk.name),
        namespace=snap.namespace,
        size=disk.size,
        storage_class=disk.storage_class,
        owner=owner,
        annotations=storage.explain(OPERATION, choice),
        mode=mode,
    )
    message = ""
    if choice.strategy == "csi-snapshot" and not gate.open:
        # the running guest is not frozen yet: nothing is made before it is
        kind, progress, message = "VolumeSnapshot", gate.progress, gate.message
    elif choice.strategy == "csi-snapshot":
        chosen = snapclass.for_storage_class(ctx, disk.storage_class, asked=snapshot_class)
        body = storage.volume_snapshot(target, source_claim=source, snapshot_class=chosen)
        made = storage.ensure(ctx.objs, kinds.VOLUME_SNAPSHOT, body)
        kind, progress = "VolumeSnapshot", storage.snapshot_progress(made)
        message = gate.message
    elif backup.online:
        # the running guest's disk as it was when the backup began, not a copy while it writes
        progress = online_backup.disk(ctx, obj, target, backup)
        kind, message = "PersistentVolumeClaim", backup.message
    else:
        progress = vmobjects.host_copy(
            ctx, target, source_claim=source, source_mode=mode, node=node
        )
        kind = "PersistentVolumeClaim"
    return diskops.DiskResult(
        disk=disk.name,
        choice=choice,
        kind=kind,
        name=target.name,
        size=disk.size,
        storage_class=disk.storage_class,
        mode=mode,
        progress=progress,
        message=message,
    )
