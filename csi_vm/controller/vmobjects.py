"""Steps shared by restore and clone: the host-copy pair, and the new VM."""

from __future__ import annotations

import enum

from csi_vm import errors
from csi_vm.controller import context, diskops, placement, storage
from csi_vm.crd import kinds
from csi_vm.crd import models as crd

#: On a VM a clone or restore made: the uid of that clone or restore.
MADE_BY = "csi-vm.io/made-by"


class Target(enum.Enum):
    """Where a target VM name stands for the clone or restore that would make it."""

    FREE = "free"  # no CsiVM of that name
    OURS = "ours"  # made by this clone or restore, on an earlier pass
    TAKEN = "taken"  # someone else's: its disks must not be replaced


def target_state(ctx: context.Context, obj: context.Json, *, name: str) -> Target:
    meta = crd.meta(obj)
    try:
        vm = ctx.objs.get(kinds.VM, name, namespace=meta.namespace)
    except errors.NotFound:
        return Target.FREE
    if (vm.get("metadata") or {}).get("annotations", {}).get(MADE_BY) == meta.uid:
        return Target.OURS
    return Target.TAKEN


def taken_message(name: str) -> str:
    return f"CsiVM {name} already exists; choose another target name"


def target_taken(ctx: context.Context, obj: context.Json, *, name: str) -> str | None:
    """Why the target VM ``name`` cannot be made by ``obj``, or None when it can.

    A VM of that name that ``obj`` did not make is someone else's: its disks
    must not be replaced, so the operation stops before creating anything.
    """
    taken = target_state(ctx, obj, name=name) is Target.TAKEN
    return taken_message(name) if taken else None


def host_copy(
    ctx: context.Context,
    target: storage.Target,
    *,
    source_claim: str,
    source_mode: crd.VolumeMode,
    node: str,
) -> storage.Progress:
    """A blank claim and the Job that fills it from ``source_claim`` (in ``source_mode``).

    ``node``: the node of the VM whose disk ``source_claim`` is, where its
    holder Pod publishes it; "" for a claim no VM holds (`placement`).
    """
    storage.ensure(ctx.objs, kinds.PVC, storage.claim(target))
    where = placement.of_source(ctx.objs, claim=source_claim, namespace=target.namespace, node=node)
    body = storage.copy_job(
        target, source_claim=source_claim, source_mode=source_mode, image=ctx.image, where=where
    )
    return storage.job_progress(storage.ensure(ctx.objs, kinds.JOB, body))


def ensure_vm(
    ctx: context.Context,
    *,
    maker: context.Json,
    name: str,
    namespace: str,
    like: crd.VMSpec,
    results: list[diskops.DiskResult],
) -> None:
    """Create the CsiVM ``name`` on the new claims, stopped, unless it exists.

    Its claims then pass from the clone or restore to the VM, so deleting
    the clone or restore later leaves the VM and its disks alone.
    """
    body = {
        "apiVersion": kinds.API_VERSION,
        "kind": kinds.KIND[kinds.VM],
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {MADE_BY: crd.meta(maker).uid},
        },
        "spec": {
            "running": False,
            "cpus": like.cpus,
            "memory": like.memory,
            "disks": [
                {
                    "name": r.disk,
                    "size": r.size,
                    "storageClassName": r.storage_class,
                    "claimName": r.name,
                    "volumeMode": r.mode.value,
                }
                for r in results
            ],
        },
    }
    try:
        vm = ctx.objs.create(kinds.VM, body, namespace=namespace)
    except errors.AlreadyExists:
        taken = target_taken(ctx, maker, name=name)
        if taken:  # made by someone else since the check at the start
            raise errors.AlreadyExists(taken) from None
        vm = ctx.objs.get(kinds.VM, name, namespace=namespace)
    adopt = {"metadata": {"ownerReferences": [storage.owner_of(vm)]}}
    for r in results:
        ctx.objs.patch(kinds.PVC, r.name, adopt, namespace=namespace)
