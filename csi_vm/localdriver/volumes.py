"""CreateVolume and DeleteVolume: idempotent by name, crash-safe, content from a source.

Choices (documented for clients):
- An empty capacity_range gives 1 GiB; sizes round up to whole MiB.
- A volume from a source is at least as large as the source; a limit below
  the source's size is OUT_OF_RANGE.
- A source whose feature is switched off (snapshot or clone) is
  INVALID_ARGUMENT, as CSI prescribes for an unsupported source.
- Creation parameters are opaque: accepted, stored and compared on a repeated
  CreateVolume, otherwise ignored. Mutable parameters are checked (see limits).
- DeleteVolume refuses (FAILED_PRECONDITION) a volume still staged, published
  or controller-published; snapshots are independent files and survive it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time

from csi_vm import errors
from csi_vm.localdriver import (
    attachstate,
    catalog,
    extents,
    fault_switches,
    faults,
    limits,
    lookup,
    model,
    nodestate,
    policy,
    quiesce,
    requests,
)
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context, node_of

log = logging.getLogger(__name__)


def _check_source(ctx: Context, source: model.Source | None) -> None:
    if source is None:
        return
    feature = Feature.SNAPSHOT if source.kind == "snapshot" else Feature.CLONE
    if not ctx.config.offers(feature):
        raise errors.InvalidInput(
            f"volume_content_source: creating a volume from a {source.kind} is not supported "
            f"(driver runs without {feature})"
        )
    policy.fail_if_broken(ctx.config, feature, rpc=f"CreateVolume from a {source.kind}")


def placement(ctx: Context, req: requests.CreateVolume) -> str | None:
    """The node the new volume lives on; None for shared storage, reachable from all."""
    if not ctx.has_topology:
        return None  # shared storage has no topology; no requisite means "anywhere"
    if not ctx.config.shared:
        _check_own_node(ctx, req)
        return ctx.config.node_id
    if not req.requisite and not req.preferred:
        return ctx.config.node_id
    with ctx.db.read() as cur:
        # The preferred segments first, as CSI asks: the scheduler's node leads them.
        for segment in (*req.preferred, *req.requisite):
            node = node_of(segment)
            allowed = not req.requisite or segment in req.requisite
            if node and allowed and attachstate.node_exists(cur, node):
                return node
    raise faults.ResourceExhausted(
        "accessibility_requirements: none of the requisite nodes runs an instance of this "
        "driver on its state dir"
    )


def _check_own_node(ctx: Context, req: requests.CreateVolume) -> None:
    if req.requisite and ctx.segment() not in req.requisite:
        raise faults.ResourceExhausted(
            "accessibility_requirements: volumes of this driver live on node "
            f"{ctx.config.node_id!r}, which is not among the requisite topologies"
        )


def validate(ctx: Context, req: requests.CreateVolume) -> int:
    """Check everything that needs no state; returns the size to create."""
    limits.check_name(req.name, field="name")
    policy.check_capabilities(req.caps, ctx.config, field="volume_capabilities")
    if any(c.mode.multi_node for c in req.caps):
        policy.fail_if_broken(ctx.config, Feature.MULTI_NODE, rpc="CreateVolume (multi-node)")
    limits.check_mutable(req.mutable, field="mutable_parameters")
    _check_source(ctx, req.source)
    return limits.resolve_size(
        req.capacity.required,
        req.capacity.limit,
        minimum=policy.minimum_size(req.caps),
        field="capacity_range",
    )


def _incompatibility(vol: model.Volume, req: requests.CreateVolume) -> str | None:
    required, limit = req.capacity.required, req.capacity.limit
    if vol.size < required or (limit and vol.size > limit):
        return f"its size {vol.size} is outside capacity_range [{required}, {limit or 'any'}]"
    return _usage_incompatibility(vol, req)


def _usage_incompatibility(vol: model.Volume, req: requests.CreateVolume) -> str | None:
    if vol.source != req.source:
        return "it has a different volume_content_source"
    if vol.parameters != req.parameters:
        return "it was created with different parameters"
    if any(vol.mutable.get(k) != v for k, v in req.mutable.items()):
        return "its mutable_parameters differ"
    if vol.size < policy.minimum_size(req.caps):
        return "it is too small for the requested filesystem"
    if not all(vol.allows(cap) for cap in req.caps):
        return f"it was created for {' and '.join(vol.access_types)} access only"
    return None


def _existing(vol: model.Volume, req: requests.CreateVolume) -> model.Volume:
    if problem := _incompatibility(vol, req):
        raise errors.AlreadyExists(f"volume named {req.name!r} exists but {problem}")
    return vol


def _source_size(ctx: Context, source: model.Source) -> tuple[int, str]:
    """Size and image path of a content source; NOT_FOUND if it is gone."""
    with ctx.db.read() as cur:
        if source.kind == "snapshot":
            snap = lookup.snapshot(cur, source.object_id, field="volume_content_source.snapshot")
            return snap.size, str(ctx.images.snapshot_path(snap.snapshot_id))
        vol = lookup.volume(cur, source.object_id, field="volume_content_source.volume")
        return vol.size, str(ctx.images.volume_path(vol.volume_id))


def _final_size(size: int, *, source_size: int, req: requests.CreateVolume) -> int:
    if req.capacity.limit and req.capacity.limit < source_size:
        raise errors.OutOfRange(
            f"capacity_range: limit_bytes {req.capacity.limit} is below the source's "
            f"size of {source_size} bytes"
        )
    return max(size, limits.round_up(source_size))


def create(ctx: Context, req: requests.CreateVolume) -> model.Volume:
    size = validate(ctx, req)
    node = placement(ctx, req)
    shared = [f"{req.source.kind}:{req.source.object_id}"] if req.source else []
    with ctx.locks.hold(exclusive=[f"volume-name:{req.name}"], shared=shared, what=req.name):
        with ctx.db.read() as cur:
            found = catalog.get_volume_by_name(cur, req.name)
        if found:
            return _existing(found, req)
        source_path = None
        if req.source:
            source_size, source_path = _source_size(ctx, req.source)
            size = _final_size(size, source_size=source_size, req=req)
        if size > ctx.images.free_bytes():
            raise errors.OutOfRange(
                f"capacity_range: {size} bytes is more than the {ctx.images.free_bytes()} "
                "bytes free in the driver's state dir"
            )
        return _make(ctx, req, size=size, source_path=source_path, node=node)


def _record(req: requests.CreateVolume, *, size: int, node: str | None) -> model.Volume:
    return model.Volume(
        volume_id=limits.new_id("vol"),
        name=req.name,
        size=size,
        pinned_node=node,
        source=req.source,
        parameters=dict(req.parameters),
        mutable=dict(req.mutable),
        created_ns=time.time_ns(),
        access_types=model.access_types(req.caps),
    )


def _make(
    ctx: Context,
    req: requests.CreateVolume,
    *,
    size: int,
    source_path: str | None,
    node: str | None,
) -> model.Volume:
    vol = _record(req, size=size, node=node)
    live = [req.source.object_id] if req.source and req.source.kind == "volume" else []
    with ctx.images.create(ctx.images.volume_path(vol.volume_id)) as image:
        if source_path and req.source and fault_switches.copies_source(ctx.config, req.source.kind):
            with quiesce.quiesced(ctx, live):
                _copy_from(source_path, image.fd)
        os.ftruncate(image.fd, fault_switches.image_size(ctx.config, size))
        ctx.hooks.reached("volume-temp")
        image.commit_file()
        ctx.hooks.reached("volume-renamed")
        try:
            with ctx.db.transaction() as cur:
                catalog.insert_volume(cur, vol)
        except sqlite3.IntegrityError:
            # A sibling process (--shared) committed the same name first.
            image.discard()
            with ctx.db.read() as cur:
                winner = catalog.get_volume_by_name(cur, req.name)
            if winner is None:
                raise
            return _existing(winner, req)
    log.info("created volume %s (%s, %d bytes)", vol.volume_id, vol.name, vol.size)
    return vol


def _copy_from(source_path: str, fd: int) -> None:
    try:
        src = os.open(source_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise faults.FailedPrecondition(
            f"volume_content_source: the source image is missing from the state dir ({err})"
        ) from err
    try:
        extents.copy_image(src, fd)
    finally:
        os.close(src)


def delete(ctx: Context, volume_id: str) -> None:
    limits.require_id(volume_id, field="volume_id")
    if not limits.is_known_shape(volume_id, kind="vol"):
        return  # never issued here, so already "gone"
    with ctx.locks.hold(exclusive=[f"volume:{volume_id}"], what=f"volume {volume_id}"):
        with ctx.db.transaction() as cur:
            vol = catalog.get_volume(cur, volume_id)
            if vol is None:
                return
            _refuse_in_use(cur, volume_id)
            catalog.delete_volume(cur, volume_id)
        # The row is gone first: a crash here leaves an image without a row,
        # which the next start removes.
        ctx.images.remove(ctx.images.volume_path(volume_id))
    log.info("deleted volume %s (%s)", volume_id, vol.name)


def _refuse_in_use(cur: sqlite3.Cursor, volume_id: str) -> None:
    users = nodestate.users(cur, volume_id)
    users += [f"controller-published to {n}" for n in attachstate.publications(cur, volume_id)]
    if users:
        raise faults.FailedPrecondition(
            f"volume {volume_id} is in use: {'; '.join(users)}",
            hint="unpublish and unstage it first",
        )
