"""Growing a VM disk by the disk_expand ladder.

csi-expand: a larger request on the PVC, which the external-resizer turns
into ControllerExpandVolume (and the kubelet into NodeExpandVolume).
copy-to-larger, for drivers without expansion: with the VM stopped, a new,
larger PVC ``<vm>-<disk>-<size>`` and a Job that copies the old one into it;
once the copy is done the VM's disk is switched to the new claim, and only
then is the old claim deleted, so a failure at any point leaves the VM on its
old, intact disk.

A Filesystem disk always grows by copy-to-larger (`_choose` says why). The
new claim keeps the old one's volumeMode.

A copy is decided once: the first pass only records the strategy in the
disk's ``resize`` status (phase Pending, or WaitingForStop while the VM
runs), and the passes after take it from there, whatever the report says by
then, so a copy is never abandoned half-way for a resize, or the reverse.
"""

from __future__ import annotations

from capabilities import model
from csi_vm.controller import context, online_copy, storage, strategy, vmobjects
from csi_vm.crd import kinds, status
from csi_vm.crd import models as crd

Json = context.Json
OPERATION = "disk_expand"
_COPY = "copy-to-larger"
#: copy-to-larger under a running guest: the CLI's name for it
_BLOCK_COPY = "block-copy"


def grow(
    ctx: context.Context,
    vm: Json,
    disk: crd.Disk,
    *,
    claim: str,
    mode: crd.VolumeMode,
    node: str,
) -> Json:
    """The disk's ``resize`` status after one step towards ``disk.size``.

    ``mode``: the volumeMode of ``claim``. ``node``: the VM's node, where its
    holder Pod keeps ``claim`` published.
    """
    kept = _recorded(vm, disk.name)
    choice = kept or _choose(ctx, disk, mode=mode)
    namespace = crd.meta(vm).namespace
    if choice.strategy == "csi-expand":
        ctx.objs.patch(kinds.PVC, claim, storage.resize(disk.size), namespace=namespace)
        _tell(ctx, vm, disk, phase="Requested", message=f"to {disk.size}: {choice.reason}")
        return _resize(choice, "Requested")
    if crd.spec(vm, crd.VMSpec).running and (running := online_copy.applies(ctx, vm, mode)):
        return _copy_online(ctx, vm, disk, claim=claim, mode=mode, node=running, choice=choice)
    if crd.spec(vm, crd.VMSpec).running:
        _tell(
            ctx,
            vm,
            disk,
            phase="WaitingForStop",
            warning=True,
            message=f"{choice.strategy} copies the disk, so it waits until the VM is stopped "
            f"({choice.reason})",
        )
        return _resize(choice, "WaitingForStop")
    if kept is None:
        return _resize(choice, "Pending")  # recorded by this pass's status; copied by the next
    return _copy_to_larger(ctx, vm, disk, claim=claim, mode=mode, node=node, choice=choice)


def _choose(ctx: context.Context, disk: crd.Disk, *, mode: crd.VolumeMode) -> model.Choice:
    """The report's plan, but copy-to-larger for a Filesystem disk whatever the plan.

    A Filesystem disk is the image file in its volume. Expanding the volume
    grows the filesystem around the file (the kubelet's NodeExpandVolume, at
    a time of the node's choosing, for some drivers only at the next mount),
    never the file. Growing the file afterwards would take one more step
    that waits for that, runs on the VM's node and must not race a running
    guest. The copy into a larger claim makes the file at its new size in one
    Job this module already runs and follows to the end, at the cost of a
    stopped VM and one copy of the disk: the simplest way that is right on
    every driver.
    """
    planned = strategy.choose(ctx.objs, storage_class=disk.storage_class, operation=OPERATION)
    if mode is not crd.VolumeMode.FILESYSTEM or planned.strategy == _COPY:
        return planned
    return model.Choice(
        strategy=_COPY,
        native=False,
        reason=f"a Filesystem disk is an image file, which expanding the volume does not "
        f"grow; it is copied into a larger claim instead (the plan: {planned.strategy})",
    )


def _larger(
    vm: Json, disk: crd.Disk, *, mode: crd.VolumeMode, choice: model.Choice
) -> storage.Target:
    """The larger claim a copy goes into: named after the size, so a retry finds it."""
    meta = crd.meta(vm)
    return storage.Target(
        name=f"{meta.name}-{disk.name}-{disk.size.lower().replace('.', '-')}",
        namespace=meta.namespace,
        size=disk.size,
        storage_class=disk.storage_class,
        owner=storage.owner_of(vm),
        annotations=storage.explain(OPERATION, choice),
        mode=mode,
    )


def _copy_online(
    ctx: context.Context,
    vm: Json,
    disk: crd.Disk,
    *,
    claim: str,
    mode: crd.VolumeMode,
    node: str,
    choice: model.Choice,
) -> Json:
    """copy-to-larger under the running guest of a launcher Pod (`online_copy`)."""
    if choice.strategy != _BLOCK_COPY:
        choice = model.Choice(strategy=_BLOCK_COPY, native=False, reason=online_copy.reason(choice))
    target = _larger(vm, disk, mode=mode, choice=choice)
    phase = online_copy.step(ctx, vm, disk.name, target, node=node)
    if phase == online_copy.COPY_FAILED:
        why = online_copy.pivot(vm, disk.name).get("reason")
        message = f"block copy into {target.name} failed ({why}); the VM keeps {claim}"
        _tell(ctx, vm, disk, phase="Failed", warning=True, message=message)
        return _resize(choice, "Failed")
    if phase == online_copy.PIVOTED:
        _switch(ctx, vm, disk, claim=target.name)
        # Still used by the launcher Pod: Kubernetes deletes it once that Pod is gone.
        ctx.objs.delete(kinds.PVC, claim, namespace=crd.meta(vm).namespace)
        message = (
            f"the running guest now on {target.name} ({disk.size}); {claim} is deleted once "
            "the launcher Pod that still holds it is gone"
        )
        _tell(ctx, vm, disk, phase="Done", message=message)
        return _resize(choice, "Done")
    message = f"copying {claim} into {target.name} under the running guest: {choice.reason}"
    _tell(ctx, vm, disk, phase="Copying", message=message)
    resized = _resize(choice, "Copying")
    resized["resize"]["targetClaim"] = target.name
    return resized


def _copy_to_larger(
    ctx: context.Context,
    vm: Json,
    disk: crd.Disk,
    *,
    claim: str,
    mode: crd.VolumeMode,
    node: str,
    choice: model.Choice,
) -> Json:
    meta = crd.meta(vm)
    target = _larger(vm, disk, mode=mode, choice=choice)
    progress = vmobjects.host_copy(ctx, target, source_claim=claim, source_mode=mode, node=node)
    if progress is storage.Progress.FAILED:
        _tell(
            ctx,
            vm,
            disk,
            phase="Failed",
            warning=True,
            message=f"copy into {target.name} failed; the VM keeps {claim}",
        )
        return _resize(choice, "Failed")
    if progress is storage.Progress.PENDING:
        _tell(
            ctx,
            vm,
            disk,
            phase="Copying",
            message=f"copying {claim} into {target.name}: {choice.reason}",
        )
        return _resize(choice, "Copying")
    _switch(ctx, vm, disk, claim=target.name)
    ctx.objs.delete(kinds.PVC, claim, namespace=meta.namespace)  # only after the switch
    _tell(
        ctx, vm, disk, phase="Done", message=f"now on {target.name} ({disk.size}); {claim} deleted"
    )
    return _resize(choice, "Done")


def _switch(ctx: context.Context, vm: Json, disk: crd.Disk, *, claim: str) -> None:
    """Point the VM's disk at ``claim``; a merge patch replaces the whole disk list."""
    disks = [dict(d) for d in (vm.get("spec") or {}).get("disks") or ()]
    for entry in disks:
        if entry.get("name") == disk.name:
            entry["claimName"] = claim
    meta = crd.meta(vm)
    ctx.objs.patch(kinds.VM, meta.name, {"spec": {"disks": disks}}, namespace=meta.namespace)


def _tell(
    ctx: context.Context,
    vm: Json,
    disk: crd.Disk,
    *,
    phase: str,
    message: str,
    warning: bool = False,
) -> None:
    """An Event when the disk's resize phase changes (not on every resync)."""
    if _old_phase(vm, disk.name) != phase:
        ctx.events.record(
            vm, reason=f"Expand{phase}", message=f"disk {disk.name}: {message}", warning=warning
        )


def _old_resize(vm: Json, disk: str) -> Json:
    for entry in (vm.get("status") or {}).get("disks") or ():
        if entry.get("name") == disk:
            return dict(entry.get("resize") or {})
    return {}


def _old_phase(vm: Json, disk: str) -> str | None:
    return _old_resize(vm, disk).get("phase")


# A copy under way (or failed: it stays so, as its Job does). Requested and
# Done are over for the controller, so a later, larger size is decided anew.
_UNDER_WAY = ("Pending", "WaitingForStop", "Copying", "Failed")


def _recorded(vm: Json, disk: str) -> model.Choice | None:
    """The strategy of a resize of ``disk`` already under way, as its status records it."""
    old = _old_resize(vm, disk)
    return strategy.recorded(old) if old.get("phase") in _UNDER_WAY else None


def _resize(choice: model.Choice, phase: str) -> Json:
    return {"resize": {"phase": phase, **status.strategy_fields(OPERATION, choice)}}
