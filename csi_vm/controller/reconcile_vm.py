"""VirtualMachine: its disks as PVCs, grown when the spec asks for more.

The controller owns the storage side; the node agent (the DaemonSet) starts
and stops the guest through libvirt once its disks are bound. A disk with a
claimName uses that PVC; otherwise the controller creates ``<vm>-<disk>``.
Growing a disk (a larger ``size`` than its PVC requests) is `expand`'s.
"""

from __future__ import annotations

from csi_vm.controller import context, expand, kinds, quantity, status, storage
from csi_vm.controller import models as crd

Json = context.Json


def reconcile(ctx: context.Context, obj: Json) -> None:
    meta = crd.meta(obj)
    spec = crd.spec(obj, crd.VMSpec)
    owner = storage.owner_of(obj)
    disks = [_disk(ctx, obj, disk, vm=meta, owner=owner) for disk in spec.disks]
    bound = all(d["phase"] == "Bound" for d in disks)
    cond = status.condition(
        "DisksReady",
        ok=bound,
        reason="Bound" if bound else "Pending",
        message=", ".join(f"{d['name']}: {d['phase']}" for d in disks) or "no disks",
        generation=meta.generation,
    )
    phase = ("Running" if spec.running else "Stopped") if bound else "Provisioning"
    context.write_status(
        ctx, kinds.VM, obj, fields={"phase": phase, "disks": disks}, conditions=[cond]
    )


def _disk(ctx: context.Context, obj: Json, disk: crd.Disk, *, vm: crd.Meta, owner: Json) -> Json:
    name = disk.claim_of(vm.name)
    target = storage.Target(
        name=name,
        namespace=vm.namespace,
        size=disk.size,
        storage_class=disk.storage_class,
        owner=owner,
    )
    # A claim the user named is theirs to give; the VM does not need to own it.
    pvc = storage.ensure(ctx.objs, kinds.PVC, storage.claim(target), foreign_ok=bool(disk.claim))
    entry: Json = {
        "name": disk.name,
        "claimName": name,
        "phase": (pvc.get("status") or {}).get("phase") or "Pending",
    }
    requested = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    if requested and quantity.to_bytes(disk.size) > quantity.to_bytes(str(requested)):
        entry.update(expand.grow(ctx, obj, disk, claim=name))
    return entry
