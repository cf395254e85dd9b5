"""A CSI snapshot of a VM that runs in its launcher Pod: made only once its agent froze it.

The controller's side of `csi_vm.crd.onlinesnap`: it asks the VM's node
agent for a freeze, makes the VolumeSnapshots once the agent answered
(frozen, or not frozen and why), and on a failed hand-over deletes what it
made, so a failed snapshot leaves nothing behind. A VM that does not run
(or whose guests run in the node's libvirt) is snapshotted at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence

from csi_vm import errors
from csi_vm.controller import context, storage
from csi_vm.crd import kinds, onlinesnap
from csi_vm.crd import models as crd

Json = context.Json


@dataclasses.dataclass(frozen=True)
class Gate:
    """Whether VolumeSnapshots may be made now; if not, the disks' progress and why."""

    open: bool
    progress: storage.Progress = storage.Progress.PENDING
    message: str = ""


OPEN = Gate(open=True)


def gate(ctx: context.Context, obj: Json, *, vm: Json, disks: Sequence[str]) -> Gate:
    """The gate for the VolumeSnapshots of ``disks`` of CsiVMSnapshot ``obj``."""
    online = onlinesnap.of(obj)
    phase = str(online.get("phase") or "")
    if phase == onlinesnap.FAILED:
        _delete_made(ctx, obj, disks)
        message = f"online snapshot failed: {online.get('reason') or 'no reason given'}"
        return Gate(open=False, progress=storage.Progress.FAILED, message=message)
    if phase in (*onlinesnap.SNAPSHOT_NOW, onlinesnap.THAWED):
        return Gate(open=True, message=f"{online.get('consistency')}: {online.get('reason')}")
    node = runs_in_launcher(ctx, vm)
    if not node or _all_made(ctx, obj, disks):
        return OPEN  # not running: an offline snapshot, consistent as it is
    if phase != onlinesnap.REQUESTED:
        fields = {
            onlinesnap.FIELD: {
                "phase": onlinesnap.REQUESTED,
                "nodeName": node,
                "reason": "the VM runs: its node agent freezes the guest first",
            }
        }
        context.write_status(ctx, kinds.SNAPSHOT, obj, fields=fields, conditions=[])
    return Gate(open=False, message=f"waiting for the node agent on {node} to freeze the guest")


def runs_in_launcher(ctx: context.Context, vm: Json) -> str:
    """The node of ``vm`` when its guest runs in a launcher Pod, else ""."""
    status = vm.get("status") or {}
    if ctx.launcher is None or status.get("phase") != "Running":
        return ""
    return str(status.get("nodeName") or "")


def _names(obj: Json, disks: Sequence[str]) -> list[str]:
    snap = crd.meta(obj).name
    return [onlinesnap.volume_snapshot_name(snap, disk) for disk in disks]


def _all_made(ctx: context.Context, obj: Json, disks: Sequence[str]) -> bool:
    namespace = crd.meta(obj).namespace
    for name in _names(obj, disks):
        try:
            ctx.objs.get(kinds.VOLUME_SNAPSHOT, name, namespace=namespace)
        except errors.NotFound:
            return False
    return True


def _delete_made(ctx: context.Context, obj: Json, disks: Sequence[str]) -> None:
    namespace = crd.meta(obj).namespace
    uid = crd.meta(obj).uid
    for name in _names(obj, disks):
        with contextlib.suppress(errors.NotFound):
            made = ctx.objs.get(kinds.VOLUME_SNAPSHOT, name, namespace=namespace)
            owners = {ref.get("uid") for ref in made["metadata"].get("ownerReferences") or ()}
            if uid in owners:  # only this snapshot's own, never a user's of that name
                ctx.objs.delete(kinds.VOLUME_SNAPSHOT, name, namespace=namespace)
