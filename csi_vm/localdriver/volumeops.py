"""Controller RPCs on existing volumes: expand, modify, get, list, validate, capacity."""

from __future__ import annotations

import dataclasses
import logging
import os

from csi_vm import errors
from csi_vm.localdriver import (
    attachstate,
    catalog,
    fault_switches,
    limits,
    lookup,
    model,
    policy,
    requests,
)
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context, node_of

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class VolumeStatus:
    volume: model.Volume
    published_nodes: tuple[str, ...]
    condition: model.Condition


@dataclasses.dataclass(frozen=True)
class Capacity:
    available: int
    maximum: int
    minimum: int


def condition(ctx: Context, vol: model.Volume) -> model.Condition:
    """The controller's view: is the image file there, and as large as recorded?"""
    try:
        size = os.stat(ctx.images.volume_path(vol.volume_id)).st_size
    except FileNotFoundError:
        return model.Condition(abnormal=True, message="the image file is missing")
    if size < vol.size:
        return model.Condition(
            abnormal=True, message=f"the image file holds {size} of {vol.size} bytes"
        )
    return model.Condition(abnormal=False, message="image file present")


def _already_large_enough(vol: model.Volume, capacity: requests.CapacityRange) -> bool:
    required, limit = capacity.required, capacity.limit
    if required < 0 or limit < 0:
        raise errors.InvalidInput("capacity_range: sizes must not be negative")
    if not required and not limit:
        raise errors.InvalidInput("capacity_range: required_bytes or limit_bytes must be set")
    if limit and limit < vol.size:
        raise errors.OutOfRange(
            f"capacity_range: limit_bytes {limit} is below the volume's size of {vol.size} "
            "bytes; volumes cannot shrink"
        )
    return required <= vol.size


def expand(ctx: Context, req: requests.ExpandVolume) -> tuple[int, bool]:
    """Grow the image (and any loop device on it); returns (size, node expansion needed)."""
    policy.require(ctx.config, Feature.EXPANSION, rpc="ControllerExpandVolume")
    policy.fail_if_broken(ctx.config, Feature.EXPANSION, rpc="ControllerExpandVolume")
    limits.require_id(req.volume_id, field="volume_id")
    if req.capacity is None:
        raise errors.InvalidInput("capacity_range is required")
    if req.cap is not None:
        policy.check_capability(req.cap, ctx.config, field="volume_capability")
    # A block volume is usable at its new size once the loop device is refreshed
    # (done here); a filesystem still needs growing on the node.
    node_needed = not (req.cap is not None and req.cap.block)
    with ctx.locks.hold(exclusive=[f"volume:{req.volume_id}"], what=f"volume {req.volume_id}"):
        with ctx.db.read() as cur:
            vol = lookup.volume(cur, req.volume_id)
        if _already_large_enough(vol, req.capacity):
            return vol.size, node_needed  # CSI: succeed when already that large
        wanted = limits.resolve_size(
            req.capacity.required, req.capacity.limit, minimum=vol.size, field="capacity_range"
        )
        if wanted - vol.size > ctx.images.free_bytes():
            raise errors.OutOfRange(f"capacity_range: not enough free space to grow to {wanted}")
        if not fault_switches.grows(ctx.config):
            log.warning("--fault expand-no-grow: answering %d bytes, growing nothing", wanted)
            return wanted, node_needed
        image = ctx.images.volume_path(vol.volume_id)
        ctx.images.grow(image, wanted)
        with ctx.db.transaction() as cur:
            catalog.set_volume_size(cur, vol.volume_id, wanted)
        for device in ctx.host.loops_backing(image):
            ctx.host.refresh_loop(device)
    log.info("expanded volume %s to %d bytes", vol.volume_id, wanted)
    return wanted, node_needed


def modify(ctx: Context, volume_id: str, mutable: dict[str, str]) -> None:
    limits.require_id(volume_id, field="volume_id")
    if not mutable:
        raise errors.InvalidInput("mutable_parameters is required and must not be empty")
    limits.check_mutable(mutable, field="mutable_parameters")
    with (
        ctx.locks.hold(exclusive=[f"volume:{volume_id}"], what=f"volume {volume_id}"),
        ctx.db.transaction() as cur,
    ):
        vol = lookup.volume(cur, volume_id)
        catalog.set_mutable(cur, volume_id, {**vol.mutable, **mutable})


def get(ctx: Context, volume_id: str) -> VolumeStatus:
    with ctx.db.read() as cur:
        vol = lookup.volume(cur, volume_id)
        nodes = attachstate.published_nodes(cur, [volume_id]).get(volume_id, [])
    return VolumeStatus(vol, tuple(nodes), condition(ctx, vol))


def list_page(ctx: Context, *, token: str, max_entries: int) -> model.Page[VolumeStatus]:
    if max_entries < 0:
        raise errors.InvalidInput("max_entries must not be negative")
    with ctx.db.read() as cur:
        page = catalog.list_volumes(cur, token=token, limit=max_entries)
        nodes = attachstate.published_nodes(cur, [v.volume_id for v in page.items])
    items = tuple(
        VolumeStatus(v, tuple(nodes.get(v.volume_id, [])), condition(ctx, v)) for v in page.items
    )
    return model.Page(items, page.next_token)


def validate_capabilities(
    ctx: Context, volume_id: str, caps: tuple[model.Capability, ...]
) -> str | None:
    """None when every capability is supported, else why not (CSI: not 'confirmed')."""
    with ctx.db.read() as cur:
        vol = lookup.volume(cur, volume_id)
    if not caps:
        raise errors.InvalidInput("volume_capabilities is required and must not be empty")
    for index, cap in enumerate(caps):
        if problem := policy.capability_problem(cap, ctx.config):
            return f"volume_capabilities[{index}]: {problem}"
        if not vol.allows(cap):
            only = " and ".join(vol.access_types)
            return f"volume_capabilities[{index}]: the volume was created for {only} access only"
    if vol.size < policy.minimum_size(caps):
        return "the volume is too small for an xfs filesystem (300 MiB at least)"
    return None


def _serves(ctx: Context, segment: dict[str, str]) -> bool:
    """Whether this driver makes volumes in the segment: its node, or (--pin-volumes)
    any node that runs an instance on the state dir."""
    mine = ctx.segment()
    if mine is None or segment == mine:
        return True
    node = node_of(segment)
    if not ctx.config.shared or node is None:
        return False
    with ctx.db.read() as cur:
        return attachstate.node_exists(cur, node)


def capacity(
    ctx: Context, *, caps: tuple[model.Capability, ...], segment: dict[str, str] | None
) -> Capacity:
    """Free space of the state dir's filesystem, or 0 where this driver cannot provision."""
    elsewhere = segment is not None and not _serves(ctx, segment)
    unsupported = any(policy.capability_problem(c, ctx.config) for c in caps)
    available = 0 if elsewhere or unsupported else ctx.images.free_bytes()
    aligned = available - available % limits.ALIGNMENT_BYTES
    return Capacity(
        available=available,
        maximum=min(aligned, limits.MAXIMUM_VOLUME_BYTES),
        minimum=policy.minimum_size(caps),
    )
