"""Storage migration on Kubernetes: new claims on the target, the VM switched to them after.

A class that is not shared across nodes cannot publish the source's volume
on the target. For such a CsiVMMigration (strategy ``storage-migration``) the
controller makes, before handing over:

- one new Block claim per disk, ``<migration>-<disk>``, of the disk's size
  and class, owned by the migration while it runs. Block whatever the mode
  of the disk's claim: the storage copy writes into what the target's qemu
  opens, and a Block claim's device is there once published, while a
  Filesystem claim would first need its image file made on the target node,
  which nothing does yet (libvirt makes a missing file only inside one of
  its storage pools). A class that offers only Filesystem claims cannot take
  a storage migration for now;
- the VM's holder Pod on the target, using those claims, so the target
  node's driver provisions and publishes them there.

The source node's agent then live-migrates with a storage copy into them
(`csi_vm.agent.migrations`). Afterwards the controller finishes here:
success switches the VM's disks to the new claims, hands them to the VM
and deletes the old claims the VM owned (a claim the user named is left to
the user); failure deletes the new claims. A ``ClaimsSwitched`` condition
on the migration makes the switch happen once.
"""

from __future__ import annotations

import contextlib

from csi_vm import errors
from csi_vm.controller import context, reconcile_vm, storage
from csi_vm.crd import kinds, names, status
from csi_vm.crd import models as crd

Json = context.Json
SWITCHED = "ClaimsSwitched"


def prepare(ctx: context.Context, mig: Json, vm: Json, *, target: str) -> None:
    """The new claims and the VM's holder Pod on ``target`` that uses them."""
    reconcile_vm.ensure_holder(ctx, vm, node=target, disks=new_claims(ctx, mig, vm))


def new_claims(ctx: context.Context, mig: Json, vm: Json) -> list[storage.HeldDisk]:
    """The migration's new claims, one per disk of the VM, made unless they exist.

    Made where the Pod that uses them first runs (WaitForFirstConsumer):
    the holder or launcher Pod on the target node.
    """
    meta = crd.meta(mig)
    owner = storage.owner_of(mig)
    held = []
    for disk in crd.spec(vm, crd.VMSpec).disks:
        name = names.migration_claim(meta.name, disk.name)
        new = storage.Target(
            name=name, namespace=meta.namespace, size=disk.size,
            storage_class=disk.storage_class, owner=owner, mode=crd.VolumeMode.BLOCK,
            annotations={storage.STRATEGY_ANNOTATION: f"live_migration/{names.STORAGE_MIGRATION}"},
        )  # fmt: skip
        storage.ensure(ctx.objs, kinds.PVC, storage.claim(new))
        held.append(storage.HeldDisk(name=disk.name, claim=name, block=True))
    return held


def finish(ctx: context.Context, mig: Json) -> None:
    """After the agent: switch the VM to the new claims, or drop them."""
    state = mig.get("status") or {}
    if state.get("strategy") != names.STORAGE_MIGRATION:
        return
    meta, spec = crd.meta(mig), crd.spec(mig, crd.MigrationSpec)
    try:
        vm = ctx.objs.get(kinds.VM, spec.vm, namespace=meta.namespace)
    except errors.NotFound:
        return
    if state.get("phase") == "Failed":
        for disk in crd.spec(vm, crd.VMSpec).disks:
            ctx.objs.delete(
                kinds.PVC, names.migration_claim(meta.name, disk.name), namespace=meta.namespace
            )
        return
    done = bool(status.current(mig, SWITCHED))
    if done or (vm.get("status") or {}).get("nodeName") != state.get("targetNode"):
        return
    _switch(ctx, mig, vm)


def _switch(ctx: context.Context, mig: Json, vm: Json) -> None:
    meta, vm_meta = crd.meta(mig), crd.meta(vm)
    old = {d.name: d.claim_of(vm_meta.name) for d in crd.spec(vm, crd.VMSpec).disks}
    disks = [
        {**d, "claimName": names.migration_claim(meta.name, str(d["name"]))}
        for d in vm["spec"]["disks"]
    ]
    ctx.objs.patch(kinds.VM, vm_meta.name, {"spec": {"disks": disks}}, namespace=meta.namespace)
    adopt = {"metadata": {"ownerReferences": [storage.owner_of(vm)]}}
    for disk in old:
        ctx.objs.patch(
            kinds.PVC, names.migration_claim(meta.name, disk), adopt, namespace=meta.namespace
        )
    for claim in old.values():
        _retire(ctx, claim, vm_uid=vm_meta.uid, namespace=meta.namespace)
    ctx.events.record(mig, reason="ClaimsSwitched", message=f"{vm_meta.name} now uses new claims")
    new = {d: names.migration_claim(meta.name, d) for d in old}
    cond = status.condition(
        SWITCHED, ok=True, reason="Switched", generation=meta.generation,
        message=", ".join(f"{d}: {c} -> {new[d]}" for d, c in old.items()),
    )  # fmt: skip
    context.write_status(ctx, kinds.MIGRATION, mig, fields={}, conditions=[cond])


def _retire(ctx: context.Context, claim: str, *, vm_uid: str, namespace: str) -> None:
    """Delete an old claim the VM owned; the user's own claims stay."""
    with contextlib.suppress(errors.NotFound):
        pvc = ctx.objs.get(kinds.PVC, claim, namespace=namespace)
        owners = {r.get("uid") for r in (pvc.get("metadata") or {}).get("ownerReferences") or ()}
        if vm_uid in owners:
            ctx.objs.delete(kinds.PVC, claim, namespace=namespace)
