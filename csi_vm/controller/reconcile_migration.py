"""VMMigration: move a running VM to another node.

The controller decides the strategy from the VM's disks (shared-volume only
when every disk's class is verified or asserted as shared across nodes,
else storage-migration, which copies the disks live) and hands the move to
the node agents by writing the decision into the migration's status; the
source node's agent runs the libvirt migration and reports progress there.
"""

from __future__ import annotations

from capabilities import model
from csi_vm import errors
from csi_vm.controller import context, diskops, kinds, status, strategy
from csi_vm.controller import models as crd

Json = context.Json
OPERATION = "live_migration"


def reconcile(ctx: context.Context, obj: Json) -> None:
    meta = crd.meta(obj)
    spec = crd.spec(obj, crd.MigrationSpec)
    if (obj.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
        return  # the node agent owns the migration from here on
    try:
        vm = ctx.objs.get(kinds.VM, spec.vm, namespace=meta.namespace)
    except errors.NotFound:
        context.refuse(
            ctx,
            kinds.MIGRATION,
            obj,
            reason="VMNotFound",
            message=f"VirtualMachine {spec.vm} does not exist",
        )
        return
    vm_spec = crd.spec(vm, crd.VMSpec)
    if not vm_spec.running:
        context.refuse(
            ctx,
            kinds.MIGRATION,
            obj,
            reason="VMNotRunning",
            message=f"VirtualMachine {spec.vm} is stopped: start it on the target node instead",
        )
        return
    choices = [
        strategy.choose(ctx.objs, storage_class=d.storage_class, operation=OPERATION)
        for d in vm_spec.disks
    ]
    choice = _weakest(choices)
    context.announce_choice(ctx, obj, operation=OPERATION, choice=choice)
    cond = status.condition(
        status.STRATEGY,
        ok=True,
        reason=choice.strategy,
        message=choice.reason,
        generation=meta.generation,
    )
    source = str((vm.get("status") or {}).get("nodeName") or vm_spec.node)
    fields = {
        "phase": "Scheduled",
        "sourceNode": source,
        "targetNode": spec.target_node,
        **status.strategy_fields(OPERATION, choice),
    }
    context.write_status(ctx, kinds.MIGRATION, obj, fields=fields, conditions=[cond])


def _weakest(choices: list[model.Choice]) -> model.Choice:
    # One disk that is not shared forces a storage copy for the whole VM.
    for choice in choices:
        if not choice.native:
            return choice
    return choices[0] if choices else diskops.combined([])
