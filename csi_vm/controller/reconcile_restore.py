"""CsiVMRestore: a new VM whose disks start as the disks of a CsiVMSnapshot.

A disk snapshotted as a VolumeSnapshot is restored by csi-restore (a PVC
whose dataSource is the snapshot); a disk snapshotted by host copy is a PVC
already, and is copied into the new claim by a Job. Either way the new claim
takes the volumeMode the snapshot recorded for the disk, which is the
source's: the snapshot controller refuses to restore into the other mode,
and the source may be gone by now. A VolumeSnapshot on a driver that cannot
restore from it cannot be read by a host copy either: that disk fails, and
the status says why.
"""

from __future__ import annotations

from capabilities import model
from csi_vm import errors
from csi_vm.controller import context, diskops, storage, strategy, vmobjects, volumemode
from csi_vm.crd import kinds
from csi_vm.crd import models as crd

Json = context.Json
OPERATION = "vm_restore"


def reconcile(ctx: context.Context, obj: Json) -> None:
    if context.finished(obj):
        return
    meta = crd.meta(obj)
    spec = crd.spec(obj, crd.RestoreSpec)
    try:
        snap = ctx.objs.get(kinds.SNAPSHOT, spec.snapshot, namespace=meta.namespace)
    except errors.NotFound:
        context.refuse(
            ctx,
            kinds.RESTORE,
            obj,
            reason="SnapshotNotFound",
            message=f"CsiVMSnapshot {spec.snapshot} does not exist",
        )
        return
    snap_status = snap.get("status") or {}
    if snap_status.get("phase") != storage.Progress.READY.value:
        context.refuse(
            ctx,
            kinds.RESTORE,
            obj,
            reason="SnapshotNotReady",
            message=f"CsiVMSnapshot {spec.snapshot} is not ready yet",
        )
        return
    taken = vmobjects.target_taken(ctx, obj, name=spec.target)
    if taken:
        context.refuse(ctx, kinds.RESTORE, obj, reason="TargetExists", message=taken)
        return
    disks = {str(d["name"]): d for d in snap_status.get("disks") or ()}
    obj, choices = diskops.decide(
        ctx,
        kinds.RESTORE,
        obj,
        operation=OPERATION,
        disks=list(disks),
        choose=lambda name: _choose(ctx, disks[name]),
    )
    owner = storage.owner_of(obj)
    results = [
        _disk(
            ctx,
            disk,
            choice=choices[name],
            target_vm=spec.target,
            namespace=meta.namespace,
            owner=owner,
        )
        for name, disk in disks.items()
    ]
    like = crd.VMSpec.model_validate({"disks": []})
    diskops.conclude(
        ctx,
        kinds.RESTORE,
        obj,
        operation=OPERATION,
        results=results,
        on_ready=lambda: vmobjects.ensure_vm(
            ctx, maker=obj, name=spec.target, namespace=meta.namespace, like=like, results=results
        ),
    )


def _choose(ctx: context.Context, disk: Json) -> model.Choice:
    sc = str(disk.get("storageClassName") or "")
    planned = strategy.choose(ctx.objs, storage_class=sc, operation=OPERATION)
    return _copied(planned) if disk.get("kind") == "PersistentVolumeClaim" else planned


def _disk(
    ctx: context.Context,
    disk: Json,
    *,
    choice: model.Choice,
    target_vm: str,
    namespace: str,
    owner: Json,
) -> diskops.DiskResult:
    name, size, sc = (
        str(disk["name"]),
        str(disk.get("size") or "1Gi"),
        str(disk.get("storageClassName") or ""),
    )
    mode = volumemode.recorded(disk)
    target = storage.Target(
        name=f"{target_vm}-{name}",
        namespace=namespace,
        size=size,
        storage_class=sc,
        owner=owner,
        annotations=storage.explain(OPERATION, choice),
        mode=mode,
    )
    message = ""
    if disk.get("kind") == "PersistentVolumeClaim":
        # No VM holds a snapshot's copy: its volume's nodeAffinity places the Job.
        copied = str(disk["objectName"])
        progress = vmobjects.host_copy(ctx, target, source_claim=copied, source_mode=mode, node="")
    elif choice.strategy == "csi-restore":
        source = storage.snapshot_source(str(disk["objectName"]))
        made = storage.ensure(ctx.objs, kinds.PVC, storage.claim(target, data_source=source))
        waits = storage.first_consumer_binds(ctx.objs, sc)
        progress = storage.claim_progress(made, first_consumer_binds=waits)
    else:
        progress = storage.Progress.FAILED
        message = (
            f"disk {name}: a VolumeSnapshot can only be read by restoring it, and "
            f"{choice.reason}; snapshot this VM again once the driver can restore, "
            "or by host copy"
        )
    return diskops.DiskResult(
        disk=name,
        choice=choice,
        kind="PersistentVolumeClaim",
        name=target.name,
        size=size,
        storage_class=sc,
        mode=mode,
        progress=progress,
        message=message,
    )


def _copied(planned: model.Choice) -> model.Choice:
    return model.Choice(
        strategy="host-copy",
        native=False,
        reason=f"the snapshot was taken by host copy, so its data is a volume to copy "
        f"(the plan for a native snapshot would be: {planned.strategy})",
    )
