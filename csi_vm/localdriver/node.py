"""NodeStageVolume and NodeUnstageVolume (publishing is in `publish`).

Stage attaches the volume's loop device and, for mount access, makes the
filesystem (once) and mounts it at the staging path. Publish bind-mounts the
staged filesystem (or the device node, for block access) at the target path.
Without stage-unstage, publish does both steps at the target path itself.
Every call is idempotent and repairs a half-done earlier attempt.

"""

from __future__ import annotations

import logging

from csi_vm import errors
from csi_vm.localdriver import (
    faults,
    limits,
    lookup,
    model,
    nodeprep,
    nodestate,
    policy,
    requests,
)
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


def _check_restage(existing: nodestate.Staging | None, *, path: str, cap: model.Capability) -> None:
    """A repeated stage must name the same path (CSI: one per volume) and capability."""
    if existing and existing.path != path:
        raise faults.FailedPrecondition(
            f"volume {existing.volume_id} is already staged at {existing.path}"
        )
    if existing and existing.cap != cap:
        raise errors.AlreadyExists(
            f"volume {existing.volume_id} is staged at {path} with another volume_capability"
        )


def stage(ctx: Context, req: requests.Stage) -> None:
    policy.require(ctx.config, Feature.STAGE_UNSTAGE, rpc="NodeStageVolume")
    limits.require_id(req.volume_id, field="volume_id")
    path = nodeprep.host_path(ctx, req.staging_path, "staging_target_path")
    cap = nodeprep.capability(ctx, req.cap, rpc="NodeStageVolume")
    policy.fail_if_broken(ctx.config, Feature.STAGE_UNSTAGE, rpc="NodeStageVolume")
    node = ctx.config.node_id
    with nodeprep.node_locks(ctx, req.volume_id):
        with ctx.db.read() as cur:
            vol = lookup.volume(cur, req.volume_id)
            existing = nodestate.get_staging(cur, volume_id=vol.volume_id, node_id=node)
        nodeprep.check_reachable(ctx, vol)
        _check_restage(existing, path=str(path), cap=cap)
        nodeprep.check_access(vol, cap)
        image = ctx.images.volume_path(vol.volume_id)
        with nodeprep.image_lock(image):
            device = nodeprep.shared_device(ctx, image)
            if not cap.block:
                nodeprep.mount_device(
                    ctx,
                    device=device,
                    path=path,
                    cap=cap,
                    read_only=cap.mode.read_only,
                    size=vol.size,
                )
            with ctx.db.transaction() as cur:
                staging = nodestate.Staging(vol.volume_id, node, str(path), cap, device)
                nodestate.add_staging(cur, staging)
    log.info("staged %s at %s (%s)", vol.volume_id, path, device)


def unstage(ctx: Context, *, volume_id: str, staging_path: str) -> None:
    policy.require(ctx.config, Feature.STAGE_UNSTAGE, rpc="NodeUnstageVolume")
    limits.require_id(volume_id, field="volume_id")
    path = nodeprep.host_path(ctx, staging_path, "staging_target_path")
    node = ctx.config.node_id
    with nodeprep.node_locks(ctx, volume_id):
        with ctx.db.read() as cur:
            staging = nodestate.get_staging(cur, volume_id=volume_id, node_id=node)
            targets = nodestate.targets_of(cur, volume_id=volume_id, node_id=node)
            if staging is None or staging.path != str(path):
                lookup.volume(cur, volume_id)  # NOT_FOUND for an unknown volume
                return  # CSI: not staged there counts as done
        if targets:
            raise faults.FailedPrecondition(
                f"volume {volume_id} is still published at {targets[0].path}",
                hint="NodeUnpublishVolume every target first",
            )
        with nodeprep.image_lock(ctx.images.volume_path(volume_id)):
            if not staging.cap.block:
                ctx.host.unmount(str(path))
            with ctx.db.transaction() as cur:
                nodestate.remove_staging(cur, volume_id=volume_id, node_id=node)
            nodeprep.release_device(ctx, volume_id=volume_id, device=staging.device)
    log.info("unstaged %s from %s", volume_id, path)
