"""VirtualMachine: its disks as PVCs, grown when the spec asks for more.

The controller owns the storage side; the node agent (the DaemonSet) starts
and stops the guest through libvirt once its disks are bound. A disk with a
claimName uses that PVC; otherwise the controller creates ``<vm>-<disk>``.
Growing a disk takes the disk_expand ladder: csi-expand patches the PVC for
the external-resizer; copy-to-larger is not done by this controller yet, and
the status says so rather than pretending.
"""

from __future__ import annotations

from capabilities import model
from csi_vm.controller import context, kinds, quantity, status, storage, strategy
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
    pvc = storage.ensure(ctx.objs, kinds.PVC, storage.claim(target))
    entry: Json = {
        "name": disk.name,
        "claimName": name,
        "phase": (pvc.get("status") or {}).get("phase") or "Pending",
    }
    requested = ((pvc.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
    if requested and quantity.to_bytes(disk.size) > quantity.to_bytes(str(requested)):
        entry.update(_grow(ctx, obj, disk, claim=name, namespace=vm.namespace))
    return entry


def _grow(ctx: context.Context, obj: Json, disk: crd.Disk, *, claim: str, namespace: str) -> Json:
    choice = strategy.choose(ctx.objs, storage_class=disk.storage_class, operation="disk_expand")
    if choice.strategy == "csi-expand":
        ctx.objs.patch(kinds.PVC, claim, storage.resize(disk.size), namespace=namespace)
        ctx.events.record(
            obj, reason="Expanding", message=f"disk {disk.name} to {disk.size}: {choice.reason}"
        )
        return {"resize": _resize(choice, "Requested")}
    ctx.events.record(
        obj,
        reason="ExpandNotDone",
        warning=True,
        message=f"disk {disk.name}: {choice.strategy} ({choice.reason}) is not done by the "
        "Kubernetes backend yet; stop the VM and clone it onto a larger disk",
    )
    return {"resize": _resize(choice, "Unsupported")}


def _resize(choice: model.Choice, phase: str) -> Json:
    return {"phase": phase, **status.strategy_fields("disk_expand", choice)}
