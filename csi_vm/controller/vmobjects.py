"""Steps shared by restore and clone: the host-copy pair, and the new VM."""

from __future__ import annotations

from csi_vm import errors
from csi_vm.controller import context, diskops, kinds, storage
from csi_vm.controller import models as crd


def host_copy(
    ctx: context.Context, target: storage.Target, *, source_claim: str
) -> storage.Progress:
    """A blank claim and the Job that fills it from ``source_claim``."""
    storage.ensure(ctx.objs, kinds.PVC, storage.claim(target))
    job = storage.ensure(
        ctx.objs, kinds.JOB, storage.copy_job(target, source_claim=source_claim, image=ctx.image)
    )
    return storage.job_progress(job)


def ensure_vm(
    ctx: context.Context,
    *,
    name: str,
    namespace: str,
    like: crd.VMSpec,
    results: list[diskops.DiskResult],
) -> None:
    """Create the VirtualMachine ``name`` on the new claims, stopped, unless it exists.

    Its claims then pass from the clone or restore to the VM, so deleting
    the clone or restore later leaves the VM and its disks alone.
    """
    body = {
        "apiVersion": kinds.API_VERSION,
        "kind": "VirtualMachine",
        "metadata": {"name": name, "namespace": namespace},
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
                }
                for r in results
            ],
        },
    }
    try:
        vm = ctx.objs.create(kinds.VM, body, namespace=namespace)
    except errors.AlreadyExists:
        vm = ctx.objs.get(kinds.VM, name, namespace=namespace)
    adopt = {"metadata": {"ownerReferences": [storage.owner_of(vm)]}}
    for r in results:
        ctx.objs.patch(kinds.PVC, r.name, adopt, namespace=namespace)
