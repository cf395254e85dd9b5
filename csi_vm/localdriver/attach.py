"""ControllerPublishVolume / ControllerUnpublishVolume: recorded attachments.

A local image needs no controller-side work to reach a node, so publishing
only records which node may use the volume, which lets the driver enforce
CSI's rules (one node unless the access mode is multi-node; a second publish
to the same node must match the first) and report published_node_ids.
publish_context is left empty.

Known nodes: this driver's own node; with --shared, every node that has run
an instance on the shared state dir.
"""

from __future__ import annotations

import contextlib
import logging

from csi_vm import errors
from csi_vm.localdriver import attachstate, faults, limits, lookup, model, policy, requests
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


def _attach_lock(ctx: Context, volume_id: str) -> contextlib.AbstractContextManager[None]:
    """Attachments of one volume change one at a time; snapshots may run meanwhile."""
    return ctx.locks.hold(
        shared=[f"volume:{volume_id}"],
        exclusive=[f"attach:{volume_id}"],
        what=f"volume {volume_id}",
    )


def _check_node(ctx: Context, node_id: str, vol: model.Volume) -> None:
    if ctx.config.shared:
        with ctx.db.read() as cur:
            known = attachstate.node_exists(cur, node_id)
    else:
        known = node_id == ctx.config.node_id
    if not known:
        raise errors.NotFound(f"node_id: node {node_id!r} is not served by this driver")
    if vol.pinned_node and vol.pinned_node != node_id:
        raise errors.NotFound(
            f"node_id: volume {vol.volume_id} lives on node {vol.pinned_node!r}, "
            f"not reachable from {node_id!r}"
        )


def _conflict(
    existing: dict[str, tuple[bool, model.Capability]], req: requests.ControllerPublish
) -> None:
    assert req.cap is not None
    same = existing.get(req.node_id)
    if same is not None:
        if same != (req.readonly, req.cap):
            raise errors.AlreadyExists(
                f"volume {req.volume_id} is already published to {req.node_id} "
                "with another capability or readonly flag"
            )
        return
    others = [n for n in existing if n != req.node_id]
    single = not req.cap.mode.multi_node or any(
        not cap.mode.multi_node for _, cap in existing.values()
    )
    if others and single:
        raise faults.FailedPrecondition(
            f"volume {req.volume_id} is already published to node {others[0]} and its "
            "access mode allows one node only"
        )


def publish(ctx: Context, req: requests.ControllerPublish) -> dict[str, str]:
    limits.require_id(req.volume_id, field="volume_id")
    limits.require_id(req.node_id, field="node_id")
    if req.cap is None:
        raise errors.InvalidInput("volume_capability is required")
    policy.check_capability(req.cap, ctx.config, field="volume_capability")
    with _attach_lock(ctx, req.volume_id):
        with ctx.db.read() as cur:
            vol = lookup.volume(cur, req.volume_id)
        _check_node(ctx, req.node_id, vol)
        with ctx.db.transaction() as cur:
            existing = attachstate.publications(cur, req.volume_id)
            _conflict(existing, req)
            attachstate.add_publication(
                cur,
                volume_id=req.volume_id,
                node_id=req.node_id,
                readonly=req.readonly,
                cap=req.cap,
            )
    log.info("controller-published %s to %s", req.volume_id, req.node_id)
    return {}


def unpublish(ctx: Context, *, volume_id: str, node_id: str) -> None:
    """Idempotent: an unknown volume or node counts as already unpublished (CSI)."""
    limits.require_id(volume_id, field="volume_id")
    with _attach_lock(ctx, volume_id), ctx.db.transaction() as cur:
        attachstate.remove_publication(cur, volume_id=volume_id, node_id=node_id)
