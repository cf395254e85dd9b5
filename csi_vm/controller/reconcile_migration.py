"""CsiVMMigration: move a running VM to another node.

The controller decides the strategy from the VM's disks (shared-volume only
when every disk's class is verified or asserted as shared across nodes,
else storage-migration, which copies the disks live) and hands the move to
the node agents by writing the decision into the migration's status; the
source node's agent (`csi_vm.agent.migrations`) runs the libvirt migration
and reports progress there.

With launcher Pods, `podmigration` makes the target launcher Pod instead
and deletes the Pod left behind. Without them, for a shared-volume
migration the controller makes the VM's holder Pod
on the target node, so the kubelet publishes the same volumes there before
the agent starts; for a storage migration, new claims and a holder on the
target that uses them (`movedisks`). Once the migration is over it deletes
the holder on the node the VM does not run on (the source after success,
the target after a failure).
"""

from __future__ import annotations

from capabilities import model
from csi_vm import errors
from csi_vm.controller import (
    context,
    diskops,
    movedisks,
    podmigration,
    reconcile_vm,
    strategy,
)
from csi_vm.crd import kinds, names, rules, status
from csi_vm.crd import models as crd

Json = context.Json
OPERATION = "live_migration"


def reconcile(ctx: context.Context, obj: Json) -> None:
    meta = crd.meta(obj)
    spec = crd.spec(obj, crd.MigrationSpec)
    phase = (obj.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        movedisks.finish(ctx, obj)
        _release(ctx, obj)
        return
    if phase == "Running":
        return  # the node agent owns the migration from here on
    try:
        vm = ctx.objs.get(kinds.VM, spec.vm, namespace=meta.namespace)
    except errors.NotFound:
        context.refuse(
            ctx,
            kinds.MIGRATION,
            obj,
            reason="VMNotFound",
            message=f"CsiVM {spec.vm} does not exist",
        )
        return
    vm_spec = crd.spec(vm, crd.VMSpec)
    refused = _refusal(ctx, spec, vm)
    if refused:
        reason, message = refused
        context.refuse(ctx, kinds.MIGRATION, obj, reason=reason, message=message)
        return
    source = rules.assigned_node(vm)
    obj, choice = _decide(ctx, obj, vm_spec)
    cond = _chosen(choice, generation=meta.generation)
    if ctx.launcher is not None:
        podmigration.prepare(ctx, obj, vm, strategy=choice.strategy, settings=ctx.launcher)
    elif choice.native:
        disks = reconcile_vm.held_disks(ctx, vm)
        reconcile_vm.ensure_holder(ctx, vm, node=spec.target_node, disks=disks)
    elif choice.strategy == names.STORAGE_MIGRATION:
        movedisks.prepare(ctx, obj, vm, target=spec.target_node)
    fields = {
        "phase": "Scheduled",
        "sourceNode": source,
        "targetNode": spec.target_node,
        **status.strategy_fields(OPERATION, choice),
    }
    context.write_status(ctx, kinds.MIGRATION, obj, fields=fields, conditions=[cond])


def _refusal(ctx: context.Context, spec: crd.MigrationSpec, vm: Json) -> tuple[str, str] | None:
    """Why the migration cannot be run (reason, message), or None."""
    if not crd.spec(vm, crd.VMSpec).running:
        return "VMNotRunning", f"CsiVM {spec.vm} is stopped: start it on the target node instead"
    try:
        ctx.objs.get(kinds.NODE, spec.target_node)
    except errors.NotFound:
        return "NodeNotFound", f"target node {spec.target_node} does not exist"
    source = rules.assigned_node(vm)
    if source == spec.target_node:
        return "AlreadyOnTarget", f"CsiVM {spec.vm} already runs on {source}"
    return None


def _decide(ctx: context.Context, obj: Json, vm_spec: crd.VMSpec) -> tuple[Json, model.Choice]:
    """The strategy recorded in ``obj``'s status, else chosen now and recorded first.

    Written before any holder or claim is made, so a pass after a report
    changed (or after a restart) prepares the same kind of move.
    """
    kept = strategy.recorded(strategy.for_this_spec(obj))
    if kept is not None:
        return obj, kept
    choice = _weakest(
        [
            strategy.choose(ctx.objs, storage_class=d.storage_class, operation=OPERATION)
            for d in vm_spec.disks
        ]
    )
    context.announce_choice(ctx, obj, operation=OPERATION, choice=choice)
    fields = {"phase": "Pending", **status.strategy_fields(OPERATION, choice)}
    cond = _chosen(choice, generation=crd.meta(obj).generation)
    return context.write_status(ctx, kinds.MIGRATION, obj, fields=fields, conditions=[cond]), choice


def _chosen(choice: model.Choice, *, generation: int) -> Json:
    return status.condition(
        status.STRATEGY,
        ok=True,
        reason=choice.strategy,
        message=choice.reason,
        generation=generation,
    )


def _release(ctx: context.Context, obj: Json) -> None:
    """Unpublish the volumes on the node the VM did not end up on."""
    state = obj.get("status") or {}
    left = state.get("sourceNode") if state.get("phase") == "Succeeded" else state.get("targetNode")
    spec = crd.spec(obj, crd.MigrationSpec)
    namespace = crd.meta(obj).namespace
    try:
        vm = ctx.objs.get(kinds.VM, spec.vm, namespace=namespace)
    except errors.NotFound:
        return  # gone with its holders (ownerReferences)
    # An old migration seen again must not unpublish disks under a VM that
    # came back to that node since.
    if ctx.launcher is not None:
        podmigration.release(ctx, obj, vm)
        return
    if not left or left == rules.assigned_node(vm):
        return
    ctx.objs.delete(kinds.POD, names.holder_pod(spec.vm, str(left)), namespace=namespace)


def _weakest(choices: list[model.Choice]) -> model.Choice:
    # One disk that is not shared forces a storage copy for the whole VM.
    for choice in choices:
        if not choice.native:
            return choice
    return choices[0] if choices else diskops.combined([])
