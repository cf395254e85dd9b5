"""CsiVMMigration of a VM in a launcher Pod: the target Pod before, the Pod left behind after.

With launcher Pods the guest moves from its Pod on the source node to a
second launcher Pod of the VM on the target node
(`csi_vm.crd.vmpod.target_pod_name`), made here before the migration is
handed to the node agents:

- shared-volume: the target Pod uses the VM's own claims (ReadWriteMany,
  so the kubelet publishes them on both nodes at once);
- storage-migration: it uses new claims of the same classes
  (`movedisks.new_claims`), provisioned on the target node for it; the
  source's qemu copies every disk into them during the migration.

The source node's agent runs a peer-to-peer live migration from the source
Pod's libvirtd to the target Pod's, over TLS (`csi_vm.agent.podmigrations`).
Afterwards the Pod on the node the VM does not run on is deleted: the source
Pod after success, the target Pod after a failure. The target Pod belongs to
the migration until it succeeded, then to the VM: deleting a migration that
has not finished (a cancel) deletes its target Pod with it, the agent
aborts the job, and the guest stays in the source Pod.
"""

from __future__ import annotations

from csi_vm import errors
from csi_vm.controller import context, launchpod, movedisks, reconcile_vm, storage
from csi_vm.crd import kinds, names, rules, vmpod
from csi_vm.crd import models as crd

Json = context.Json


def prepare(
    ctx: context.Context, mig: Json, vm: Json, *, strategy: str, settings: launchpod.Settings
) -> Json:
    """The target launcher Pod on the migration's target node; the Pod."""
    target = crd.spec(mig, crd.MigrationSpec).target_node
    if strategy == names.STORAGE_MIGRATION:
        _block_only(ctx, vm)
        disks = movedisks.new_claims(ctx, mig, vm)
    else:
        disks = reconcile_vm.held_disks(ctx, vm)
    body = launchpod.body(vm, node=target, disks=disks, settings=settings, target=True)
    body["metadata"]["ownerReferences"] = [storage.owner_of(mig)]
    return launchpod.ensure(ctx.objs, body)


def _block_only(ctx: context.Context, vm: Json) -> None:
    """Refuse a storage copy of a Filesystem disk: its image file has another path in Block."""
    for disk in reconcile_vm.held_disks(ctx, vm):
        if not disk.block:
            raise errors.Rejected(
                f"CsiVM {crd.meta(vm).name}: disk {disk.name} is a Filesystem claim, and a "
                "storage migration between launcher Pods copies Block claims only: stop the VM "
                "and start it on the target node, or use a class shared across nodes"
            )


def release(ctx: context.Context, mig: Json, vm: Json) -> None:
    """After the migration: delete the launcher Pod on the node the VM did not end up on."""
    state = mig.get("status") or {}
    namespace = crd.meta(vm).namespace
    if state.get("phase") == "Succeeded":
        _adopt(ctx, mig, vm, node=str(state.get("targetNode")))
    left = state.get("sourceNode") if state.get("phase") == "Succeeded" else state.get("targetNode")
    # An old migration seen again must not remove the Pod of a VM that came
    # back to that node since.
    if not left or left == rules.assigned_node(vm):
        return
    pod = launchpod.on_node(ctx.objs, vm, str(left))
    if pod is not None:
        ctx.objs.delete(kinds.POD, pod["metadata"]["name"], namespace=namespace)


def _adopt(ctx: context.Context, mig: Json, vm: Json, *, node: str) -> None:
    """Hand the migration's target Pod to the VM: the guest's Pod now outlives the migration.

    Only a Pod this migration owns: a later migration to the same node owns
    the Pod of the same name, which stays its own until it succeeds.
    """
    name, namespace = vmpod.target_pod_name(crd.meta(vm).name, node), crd.meta(vm).namespace
    try:
        pod = ctx.objs.get(kinds.POD, name, namespace=namespace)
    except errors.NotFound:
        return
    owners = (pod.get("metadata") or {}).get("ownerReferences") or []
    if crd.meta(mig).uid not in {o.get("uid") for o in owners}:
        return
    adopt = {"metadata": {"ownerReferences": [storage.owner_of(vm)]}}
    ctx.objs.patch(kinds.POD, name, adopt, namespace=namespace)
