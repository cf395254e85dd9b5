"""NodePublishVolume and NodeUnpublishVolume.

Block access: the loop device node is bind-mounted onto a file at the target
path (read-only targets get their own read-only loop device, since a
read-only bind mount does not stop writes to a device node). Mount access:
the staged filesystem is bind-mounted at the target (remounted read-only when
asked); without stage-unstage the filesystem is mounted there directly.

A second target of one volume on the same node is refused (FAILED_PRECONDITION)
for SINGLE_NODE_SINGLE_WRITER, and for any mode when its capability differs
from the first target's, as CSI's table says; other modes may have several
targets, as Kubernetes expects of ReadWriteOnce volumes used by pods on one node.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib

from csi_vm import errors
from csi_vm.localdriver import faults, limits, lookup, model, nodeprep, nodestate, requests
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class _Plan:
    volume: model.Volume
    target: pathlib.Path
    cap: model.Capability
    read_only: bool
    staging: nodestate.Staging | None  # None without stage-unstage
    existing: nodestate.Target | None


def _check_existing(plan: _Plan) -> None:
    existing = plan.existing
    if existing is None:
        return
    if existing.volume_id != plan.volume.volume_id:
        raise faults.FailedPrecondition(
            f"target_path {plan.target} is in use by volume {existing.volume_id}"
        )
    if (existing.cap, existing.readonly) != (plan.cap, plan.read_only):
        raise errors.AlreadyExists(
            f"volume {plan.volume.volume_id} is published at {plan.target} "
            "with another volume_capability or readonly flag"
        )


def _check_other_targets(plan: _Plan, others: list[nodestate.Target]) -> None:
    for other in others:
        if other.path == str(plan.target):
            continue
        single = plan.cap.mode == model.AccessMode.SINGLE_NODE_SINGLE_WRITER
        if single or other.cap != plan.cap:
            why = "single writer" if other.cap == plan.cap else "another capability"
            raise faults.FailedPrecondition(
                f"volume {plan.volume.volume_id} is already published at {other.path} ({why})"
            )


def _check_staging(ctx: Context, plan: _Plan, staging_path: str) -> None:
    if not ctx.config.offers(Feature.STAGE_UNSTAGE):
        return
    if not staging_path:
        raise faults.FailedPrecondition(
            "staging_target_path is required: this driver stages volumes",
            hint="call NodeStageVolume first",
        )
    wanted = str(nodeprep.host_path(ctx, staging_path, "staging_target_path"))
    if plan.staging is None or plan.staging.path != wanted:
        raise faults.FailedPrecondition(
            f"volume {plan.volume.volume_id} is not staged at {wanted}",
            hint="call NodeStageVolume first",
        )
    if plan.staging.cap.block != plan.cap.block:
        raise faults.FailedPrecondition("volume_capability: access type differs from the staging")


def _plan(ctx: Context, req: requests.Publish) -> _Plan:
    limits.require_id(req.volume_id, field="volume_id")
    target = nodeprep.host_path(ctx, req.target_path, "target_path")
    cap = nodeprep.capability(ctx, req.cap, rpc="NodePublishVolume")
    node = ctx.config.node_id
    with ctx.db.read() as cur:
        vol = lookup.volume(cur, req.volume_id)
        plan = _Plan(
            volume=vol,
            target=target,
            cap=cap,
            read_only=req.readonly or cap.mode.read_only,
            staging=nodestate.get_staging(cur, volume_id=vol.volume_id, node_id=node),
            existing=nodestate.get_target(cur, node_id=node, path=str(target)),
        )
        others = nodestate.targets_of(cur, volume_id=vol.volume_id, node_id=node)
    nodeprep.check_reachable(ctx, vol)
    _check_existing(plan)
    nodeprep.check_access(vol, cap)
    _check_other_targets(plan, others)
    _check_staging(ctx, plan, req.staging_path)
    return plan


def _device(ctx: Context, plan: _Plan, image: pathlib.Path) -> tuple[str, bool]:
    """The loop device for this target, and whether it is private to it."""
    if plan.cap.block and plan.read_only:
        old = plan.existing
        if old and old.private_device and old.device in ctx.host.live_loops_backing(image):
            return old.device, True
        return ctx.host.attach_loop(image, read_only=True), True
    if plan.staging is not None:
        return nodeprep.staged_device(ctx, plan.staging, image), False
    return nodeprep.shared_device(ctx, image), False


def _lost_device(ctx: Context, target: nodestate.Target, image: pathlib.Path) -> bool:
    """A block target whose loop device was detached (from outside) binds a free
    number, which the next attach of any image takes: it must be bound again.
    (Nobody held it open, or the kernel would not have let the device go.)"""
    return target.cap.block and target.device not in ctx.host.live_loops_backing(image)


def _unbind_lost(ctx: Context, plan: _Plan, image: pathlib.Path) -> None:
    old = plan.existing
    if old is None or not _lost_device(ctx, old, image):
        return
    log.warning(
        "%s bound at %s no longer backs volume %s: binding it again",
        old.device,
        plan.target,
        old.volume_id,
    )
    ctx.host.unmount(str(plan.target))


def _place(ctx: Context, plan: _Plan, device: str) -> None:
    target = plan.target
    if plan.cap.block:
        nodeprep.prepare_file(target)
        if not ctx.host.mounts_at(str(target)):
            ctx.host.bind(device, str(target), read_only=plan.read_only)
    elif plan.staging is not None:
        nodeprep.prepare_dir(target)
        if not ctx.host.mounts_at(str(target)):
            ctx.host.bind(plan.staging.path, str(target), read_only=plan.read_only)
    else:
        nodeprep.mount_device(
            ctx,
            device=device,
            path=target,
            cap=plan.cap,
            read_only=plan.read_only,
            size=plan.volume.size,
        )


def publish(ctx: Context, req: requests.Publish) -> None:
    with nodeprep.node_locks(ctx, req.volume_id):
        plan = _plan(ctx, req)
        image = ctx.images.volume_path(plan.volume.volume_id)
        old = plan.existing
        if old and ctx.host.mounts_at(str(plan.target)) and not _lost_device(ctx, old, image):
            return  # published earlier with the same arguments
        with nodeprep.image_lock(image):
            _unbind_lost(ctx, plan, image)
            device, private = _device(ctx, plan, image)
            _place(ctx, plan, device)
            with ctx.db.transaction() as cur:
                nodestate.add_target(
                    cur,
                    nodestate.Target(
                        node_id=ctx.config.node_id,
                        path=str(plan.target),
                        volume_id=plan.volume.volume_id,
                        cap=plan.cap,
                        readonly=plan.read_only,
                        device=device,
                        private_device=private,
                    ),
                )
    log.info("published %s at %s", plan.volume.volume_id, plan.target)


def unpublish(ctx: Context, *, volume_id: str, target_path: str) -> None:
    limits.require_id(volume_id, field="volume_id")
    target = nodeprep.host_path(ctx, target_path, "target_path")
    node = ctx.config.node_id
    with nodeprep.node_locks(ctx, volume_id):
        with ctx.db.read() as cur:
            row = nodestate.get_target(cur, node_id=node, path=str(target))
            if row is None or row.volume_id != volume_id:
                lookup.volume(cur, volume_id)  # NOT_FOUND for an unknown volume
                return  # CSI: not published there counts as done
        with nodeprep.image_lock(ctx.images.volume_path(volume_id), missing_ok=True):
            ctx.host.unmount(str(target))
            nodeprep.remove_target_path(target)
            with ctx.db.transaction() as cur:
                nodestate.remove_target(cur, node_id=node, path=str(target))
            nodeprep.release_device(ctx, volume_id=volume_id, device=row.device)
    log.info("unpublished %s from %s", volume_id, target)
