"""A snapshot of a running VM's disk whose class has no CSI snapshots: a push backup.

The controller's side of the push backup in `csi_vm.crd.onlinesnap`: the
snapshot's claim of each such disk and a holder Pod that has the kubelet
publish it on the VM's node, then the request to the node agent, which has
the launcher's libvirt back the running guest up into it. A copy Job of a
running disk would copy it while the guest writes, no point in time at all;
a backup is the disk as it was when the backup began. After the agent's
answer the holder Pods go (and, after a failure, the claims). A VM that
stops before the backup is done is copied by a host-copy Job as any stopped
VM: into the same claim, which the copy overwrites whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence

from capabilities import model
from csi_vm import errors
from csi_vm.controller import context, online, placement, storage
from csi_vm.crd import kinds, onlinesnap
from csi_vm.crd import models as crd
from csi_vm.kube import objects

Json = context.Json
Progress = storage.Progress


@dataclasses.dataclass(frozen=True)
class Backup:
    """Whether the backup disks go by push backup, and where it stands."""

    online: bool
    phase: str = ""
    node: str = ""
    message: str = ""


OFFLINE = Backup(online=False)


def gate(ctx: context.Context, obj: Json, *, vm: Json, claims: Sequence[str]) -> Backup:
    """How the disks whose snapshot claims are ``claims`` are backed up on this pass."""
    found = onlinesnap.backup(obj)
    phase, node = str(found.get("phase") or ""), str(found.get("nodeName") or "")
    reason = str(found.get("reason") or "")
    if phase == onlinesnap.BACKED_UP:
        message = f"push backup of the running guest: {found.get('consistency')}: {reason}"
        return Backup(online=True, phase=phase, node=node, message=message)
    if phase == onlinesnap.BACKUP_FAILED:
        return Backup(online=True, phase=phase, node=node, message=f"push backup failed: {reason}")
    running = online.runs_in_launcher(ctx, vm)
    if not running:
        release(ctx, obj, claims)  # stopped mid-way: the host copy takes over
        return OFFLINE
    if phase != onlinesnap.BACKUP_REQUESTED:
        fields = {
            onlinesnap.BACKUP_FIELD: {
                "phase": onlinesnap.BACKUP_REQUESTED,
                "nodeName": running,
                "reason": "the VM runs and the class has no CSI snapshots: a push backup",
            }
        }
        context.write_status(ctx, kinds.SNAPSHOT, obj, fields=fields, conditions=[])
    message = f"waiting for the node agent on {running} to back the running guest up"
    return Backup(online=True, phase=onlinesnap.BACKUP_REQUESTED, node=running, message=message)


def chosen(choices: dict[str, model.Choice]) -> dict[str, model.Choice]:
    """``choices`` with every copied disk taking the push backup, and saying why."""
    backup = model.Choice(
        strategy=onlinesnap.PUSH_BACKUP, native=False, reason=onlinesnap.PUSH_BACKUP_REASON
    )
    return {d: backup if c.strategy in onlinesnap.COPIES else c for d, c in choices.items()}


def disk(ctx: context.Context, obj: Json, target: storage.Target, backup: Backup) -> Progress:
    """One disk's claim (and holder Pod while the agent needs it) at ``backup``'s phase."""
    if backup.phase == onlinesnap.BACKUP_FAILED:
        release(ctx, obj, [target.name])
        delete_own(ctx, obj, kinds.PVC, target.name)
        return Progress.FAILED
    claim = storage.ensure(ctx.objs, kinds.PVC, storage.claim(target))
    if backup.phase == onlinesnap.BACKED_UP:
        # Ready only once nothing but the claim is left
        if release(ctx, obj, [target.name]):
            return Progress.PENDING
        return storage.claim_progress(claim)
    hold(ctx, target, node=backup.node)
    return Progress.PENDING


def hold(ctx: context.Context, target: storage.Target, *, node: str) -> None:
    """A holder Pod on ``node`` for the claim ``target``: the kubelet publishes it there."""
    body = storage.holder_pod(target, image=ctx.image)
    where = placement.Placement(selector=placement.on_node(node), any_taint=True)
    body["spec"].update(where.pod_fields())
    # The agent uses the published device as long as it needs: the holder waits until deleted.
    body["spec"]["containers"][0]["command"] = ["sleep", "infinity"]
    body["spec"]["terminationGracePeriodSeconds"] = 1  # sleep ignores SIGTERM
    storage.ensure(ctx.objs, kinds.POD, body)


def release(ctx: context.Context, obj: Json, claims: Sequence[str]) -> bool:
    """Delete the holder Pods of ``claims``; whether any is still there (terminating)."""
    left = False
    for claim in claims:
        left = delete_own(ctx, obj, kinds.POD, onlinesnap.backup_holder(claim)) or left
    return left


def delete_own(ctx: context.Context, obj: Json, res: objects.Resource, name: str) -> bool:
    """Delete ``name`` if ``obj`` owns it (never a user's object); whether it was there."""
    meta = crd.meta(obj)
    try:
        found = ctx.objs.get(res, name, namespace=meta.namespace)
    except errors.NotFound:
        return False
    owners = {ref.get("uid") for ref in found["metadata"].get("ownerReferences") or ()}
    if meta.uid not in owners:
        return False
    with contextlib.suppress(errors.NotFound):
        ctx.objs.delete(res, name, namespace=meta.namespace)
    return True
