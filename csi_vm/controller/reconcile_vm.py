"""CsiVM: its disks as PVCs, grown when the spec asks for more.

The controller owns the storage side; the node agent (the DaemonSet,
`csi_vm.agent`) starts and stops the guest through libvirt once its disks
are bound. A disk with a claimName uses that PVC; otherwise the controller
creates ``<vm>-<disk>`` in the disk's volumeMode, ReadWriteMany when the
class's plan migrates on a shared volume. Growing a disk (a larger ``size``
than its PVC holds, `volumemode.disk_bytes`) is `expand`'s.

A VM runs on a node: ``status.nodeName`` while it runs there (the agent
writes it), else ``spec.nodeName``. The controller makes a holder Pod on
that node which uses every claim of the VM, because the kubelet publishes a
volume on a node only for a pod that uses it; the agent reads the
published volumes under that pod's directory. Once the disks are bound the
phase is the agent's: the controller sets it only while provisioning.

A disk whose claim is not bound says why in the ``DisksReady`` condition
when the controller can tell (`unbound`): a StorageClass that does not
exist, or the Secret the class has its provisioner read.
"""

from __future__ import annotations

import dataclasses

from csi_vm import errors
from csi_vm.controller import (
    context,
    expand,
    launchpod,
    online_copy,
    storage,
    strategy,
    unbound,
    volumemode,
)
from csi_vm.crd import kinds, rules, status
from csi_vm.crd import models as crd
from csi_vm.kube import quantity

Json = context.Json
#: The condition that says whether the VM's node is known to the cluster.
NODE = "NodeAssigned"
#: The condition that says whether every disk's claim is bound, and if not why.
DISKS = "DisksReady"
#: Phases the node agent writes; the controller leaves them alone.
AGENT_PHASES = ("Starting", "Running", "Stopping", "Stopped", "Failed")
_MIGRATION = "live_migration"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _DiskState:
    #: the disk's entry of status.disks
    entry: Json
    held: storage.HeldDisk
    #: why its claim is not bound, when the controller can tell
    why: unbound.Why | None = None


def reconcile(ctx: context.Context, obj: Json) -> None:
    meta = crd.meta(obj)
    spec = crd.spec(obj, crd.VMSpec)
    owner = storage.owner_of(obj)
    states = [
        _disk(ctx, obj, disk, index=i, vm=meta, owner=owner) for i, disk in enumerate(spec.disks)
    ]
    disks = [s.entry for s in states]
    bound = all(d["phase"] == "Bound" for d in disks)
    conditions = [_disks_ready(ctx, obj, states, bound=bound)]
    node = rules.assigned_node(obj)
    if node:
        conditions.append(_hold(ctx, obj, node=node, disks=[s.held for s in states]))
    elif spec.running:
        message = "spec.nodeName is empty: name the node the VM is to run on"
        gen = meta.generation
        conditions.append(
            status.condition(NODE, ok=False, reason="NoNode", message=message, generation=gen)
        )

    def change(now: Json) -> tuple[Json, list[Json]]:
        return {"phase": _phase(now, spec, bound=bound), "disks": disks}, conditions

    # The phase is the node agent's once it wrote one: worked out again from
    # the object as it is when the write lands, not as this pass read it.
    context.update_status(ctx, kinds.VM, obj, change=change)


def _disks_ready(ctx: context.Context, obj: Json, states: list[_DiskState], *, bound: bool) -> Json:
    """The DisksReady condition; a claim that cannot bind as things stand also posts an Event."""
    lines = []
    for state in states:
        line = f"{state.entry['name']}: {state.entry['phase']}"
        lines.append(f"{line} ({state.why.message})" if state.why else line)
    message = ", ".join(lines) or "no disks"
    whys = [s.why for s in states if s.why]
    reason = "Bound" if bound else (whys[0].reason if whys else "Pending")
    if any(w.stuck for w in whys):
        return status.tell(ctx.events, obj, kind=DISKS, reason=reason, message=message, ok=False)
    gen = crd.meta(obj).generation
    return status.condition(DISKS, ok=bound, reason=reason, message=message, generation=gen)


def _phase(obj: Json, spec: crd.VMSpec, *, bound: bool) -> str:
    old = (obj.get("status") or {}).get("phase")
    if not bound:
        return "Provisioning"
    if old in AGENT_PHASES:
        return str(old)  # the node agent's from here on
    # "Starting": handed to the node agent, which writes Running once it runs.
    return "Starting" if spec.running else "Stopped"


def _hold(ctx: context.Context, obj: Json, *, node: str, disks: list[storage.HeldDisk]) -> Json:
    """The holder Pod on ``node``, or a condition that says why there is none."""
    try:
        ctx.objs.get(kinds.NODE, node)
    except errors.NotFound:
        message = f"node {node} does not exist: set spec.nodeName to a node of the cluster"
        return status.tell(
            ctx.events, obj, kind=NODE, reason="NodeNotFound", message=message, ok=False
        )
    gen = crd.meta(obj).generation
    if ctx.launcher is not None:
        return _launch(ctx, obj, node=node, disks=disks, settings=ctx.launcher)
    ensure_holder(ctx, obj, node=node, disks=disks)
    message = f"disks published on {node}"
    return status.condition(NODE, ok=True, reason="Held", message=message, generation=gen)


def _launch(
    ctx: context.Context,
    obj: Json,
    *,
    node: str,
    disks: list[storage.HeldDisk],
    settings: launchpod.Settings,
) -> Json:
    """The VM's launcher Pod on ``node`` while it is to run; none, once it is to stop."""
    gen = crd.meta(obj).generation
    if not crd.spec(obj, crd.VMSpec).running:
        # Its container powers the guest off before it ends (`launchpod`).
        launchpod.remove(ctx.objs, obj, node=node)
        if launchpod.on_node(ctx.objs, obj, node) is None:
            # the guest is off: a disk it was pivoted onto needs no holder now
            online_copy.release_holders(ctx, obj)
        message = f"stopped: no launcher Pod on {node}"
        return status.condition(NODE, ok=True, reason="Stopped", message=message, generation=gen)
    # After a live migration the guest runs in the Pod the migration made there.
    pod = launchpod.on_node(ctx.objs, obj, node) or launchpod.ensure(
        ctx.objs, launchpod.body(obj, node=node, disks=disks, settings=settings)
    )
    message = f"launcher Pod {pod['metadata']['name']} on {node}"
    return status.condition(NODE, ok=True, reason="Launched", message=message, generation=gen)


def ensure_holder(
    ctx: context.Context, obj: Json, *, node: str, disks: list[storage.HeldDisk]
) -> Json:
    """Create (or find) the Pod that publishes the VM's claims ``disks`` on ``node``.

    A Pod's volumes cannot change. When the VM's claims did (a disk copied to
    a larger claim) and the VM does not run on ``node``, the old holder is
    deleted and a later pass makes it anew; under a running guest it stays.
    """
    body = storage.vm_holder(obj, node=node, disks=disks, image=ctx.image)
    pod = storage.ensure(ctx.objs, kinds.POD, body)
    if _claims(pod) != _claims(body) and (obj.get("status") or {}).get("nodeName") != node:
        meta = pod["metadata"]
        ctx.objs.delete(kinds.POD, meta["name"], namespace=meta["namespace"])
    return pod


def _claims(pod: Json) -> list[str]:
    volumes = (pod.get("spec") or {}).get("volumes") or ()
    return sorted(str((v.get("persistentVolumeClaim") or {}).get("claimName")) for v in volumes)


def held_disks(ctx: context.Context, obj: Json) -> list[storage.HeldDisk]:
    """The VM's claims as a holder Pod uses them, read from the claims themselves."""
    meta = crd.meta(obj)
    held = []
    for disk in crd.spec(obj, crd.VMSpec).disks:
        pvc = ctx.objs.get(kinds.PVC, disk.claim_of(meta.name), namespace=meta.namespace)
        held.append(_held(disk, pvc, vm=meta.name))
    return held


def _held(disk: crd.Disk, pvc: Json, *, vm: str) -> storage.HeldDisk:
    block = rules.volume_mode(pvc) is crd.VolumeMode.BLOCK
    return storage.HeldDisk(name=disk.name, claim=disk.claim_of(vm), block=block)


def _disk(
    ctx: context.Context, obj: Json, disk: crd.Disk, *, index: int, vm: crd.Meta, owner: Json
) -> _DiskState:
    name = disk.claim_of(vm.name)
    shared = strategy.choose(
        ctx.objs, storage_class=disk.storage_class, operation=_MIGRATION
    ).native
    target = storage.Target(
        name=name,
        namespace=vm.namespace,
        size=disk.size,
        storage_class=disk.storage_class,
        owner=owner,
        shared=shared,
        mode=disk.volume_mode,
    )
    # A claim the user named is theirs to give; the VM does not need to own it.
    pvc = storage.ensure(ctx.objs, kinds.PVC, storage.claim(target), foreign_ok=bool(disk.claim))
    entry: Json = {
        "name": disk.name,
        "claimName": name,
        "phase": (pvc.get("status") or {}).get("phase") or "Pending",
    }
    why = None
    if entry["phase"] != "Bound":
        field = "" if disk.claim else f"spec.disks[{index}].storageClassName"
        why = unbound.waiting(ctx.objs, pvc, field=field)
    held = volumemode.disk_bytes(pvc)
    if held is not None and quantity.to_bytes(disk.size) > held:
        mode = rules.volume_mode(pvc)
        entry.update(
            expand.grow(ctx, obj, disk, claim=name, mode=mode, node=rules.assigned_node(obj))
        )
    return _DiskState(entry=entry, held=_held(disk, pvc, vm=vm.name), why=why)
