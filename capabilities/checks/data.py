"""Checks that move data through a node: publish, snapshot, restore, clone, grow."""

from __future__ import annotations

import uuid

from capabilities import dataio, model
from capabilities.checks import context
from csi_vm import errors
from csi_vm.csi import models

F = model.Feature
M = models.VolumeMode
A = models.AccessMode


def _token(what: str) -> str:
    return f"csi-vm-{what}-{uuid.uuid4().hex[:12]}"


def node_io(ctx: context.Context) -> None:
    """Publish one volume per working mode, write a marker, read it back."""
    node = ctx.first_node
    if node is None:
        for feature in (F.STAGE_UNSTAGE, F.VOLUME_STATS):
            ctx.results.set(feature, None, ctx.node_reason)
        return
    for mode, feature in ((M.BLOCK, F.BLOCK), (M.FILESYSTEM, F.FILESYSTEM)):
        if ctx.accepted.get((mode, A.SINGLE_NODE_WRITER)):
            with ctx.results.attempt(feature):
                _publish_and_check(ctx, node, mode, feature)


def _publish_and_check(ctx: context.Context, node: str, mode: M, feature: F) -> None:
    cap = context.capability(mode)
    vol = ctx.session.volume(f"io-{mode}", size=ctx.size, capability=cap)
    staging = _stage(ctx, node, vol, cap)
    target = ctx.session.publish(
        node, volume_id=vol.volume_id, capability=cap, staging_path=staging
    )
    if short := _short_device(vol, target, mode):
        ctx.results.set(feature, False, f"{mode} volume published on {node}: {short}")
        return
    token = _token("io")
    dataio.write(target, mode=mode, token=token)
    if not dataio.holds(target, mode=mode, token=token):
        ctx.results.set(
            feature, False, f"{mode} volume published on {node} did not return what was written"
        )
        return
    ctx.published[mode] = context.Published(
        volume=vol, capability=cap, staging=staging, target=target, token=token
    )
    ctx.results.set(feature, True, f"{mode} volume published on {node}: data written and read back")
    _stats(ctx, vol.volume_id, target)


def _stage(
    ctx: context.Context, node: str, vol: models.Volume, cap: models.VolumeCapability
) -> str:
    if ctx.results.get(F.STAGE_UNSTAGE) is False:
        return ""
    with ctx.results.attempt(F.STAGE_UNSTAGE):
        try:
            path = ctx.session.stage(node, volume_id=vol.volume_id, capability=cap)
        except errors.Unsupported as err:
            ctx.results.set(F.STAGE_UNSTAGE, False, f"NodeStageVolume not offered: {err}")
            return ""
        ctx.results.set(F.STAGE_UNSTAGE, True, f"NodeStageVolume staged a volume on {node}")
        return path
    return ""


def _stats(ctx: context.Context, volume_id: str, target: str) -> None:
    with ctx.results.attempt(F.VOLUME_STATS):
        stats = ctx.session.nodes[ctx.nodes[0]].node_stats(volume_id, volume_path=target)
        units = ", ".join(f"{u.unit} total {u.total}" for u in stats.usage)
        ctx.results.set(
            F.VOLUME_STATS, bool(stats.usage), f"NodeGetVolumeStats: {units or 'no usage'}"
        )


def snapshot_restore(ctx: context.Context) -> None:
    """Snapshot the data volume, change the source, restore, expect the old data."""
    data = ctx.data_volume()
    with ctx.results.attempt(F.SNAPSHOT):
        source_id = data.volume.volume_id if data else _blank_volume(ctx)
        snap = ctx.session.snapshot("snap", volume_id=source_id)
        snap = ctx.wait_snapshot_ready(snap)
        ctx.snapshot = snap
        # Ready is only an answer: with data to look at, the restore below
        # decides; without, the feature stays unverified.
        ready = f"snapshot {snap.snapshot_id} ready ({snap.size_bytes} bytes)"
        if data is None:
            ready += f"; its data was not checked: {ctx.node_reason or 'no data volume'}"
        ctx.results.set(F.SNAPSHOT, True if data else None, ready)
    if ctx.snapshot is None:
        ctx.results.set(F.RESTORE_FROM_SNAPSHOT, None, "not attempted: no snapshot to restore from")
        return
    if data is not None:
        data.token, old = _token("after-snap"), data.token
        dataio.write(data.target, mode=data.capability.mode, token=data.token)
    with ctx.results.attempt(F.RESTORE_FROM_SNAPSHOT):
        source = models.SnapshotSource(snapshot_id=ctx.snapshot.snapshot_id)
        expected = old if data is not None else None
        ok, evidence = _new_volume_holds(ctx, "restore", source, data, expected)
        ctx.results.set(F.RESTORE_FROM_SNAPSHOT, ok, evidence)
        if ok is False:
            # A snapshot's data can only be read by restoring it: one whose
            # restore lacks the data is of no use, whichever of the two lied.
            ctx.results.set(F.SNAPSHOT, False, f"snapshot ready, but restored: {evidence}")


def clone(ctx: context.Context) -> None:
    data = ctx.data_volume()
    with ctx.results.attempt(F.CLONE):
        source_id = data.volume.volume_id if data else _blank_volume(ctx)
        expected = data.token if data else None
        ok, evidence = _new_volume_holds(
            ctx, "clone", models.VolumeSource(volume_id=source_id), data, expected
        )
        ctx.results.set(F.CLONE, ok, evidence)


def _blank_volume(ctx: context.Context) -> str:
    mode = M.BLOCK if ctx.accepted.get((M.BLOCK, A.SINGLE_NODE_WRITER)) else M.FILESYSTEM
    return ctx.session.volume(
        f"source-{mode}", size=ctx.size, capability=context.capability(mode)
    ).volume_id


def _new_volume_holds(
    ctx: context.Context,
    what: str,
    source: models.ContentSource,
    data: context.Published | None,
    expected: str | None,
) -> tuple[bool | None, str]:
    """Whether a volume made from `source` holds `expected`; None when that cannot be seen."""
    mode = data.capability.mode if data else M.FILESYSTEM
    vol = ctx.session.volume(
        what, size=ctx.size, capability=context.capability(mode), source=source
    )
    node = ctx.first_node
    if data is None or node is None or expected is None:
        return (
            None,
            f"volume {vol.volume_id} created from the source, but its data was not "
            f"checked: {ctx.node_reason or 'no data volume'}",
        )
    _, target = ctx.attach(node, volume_id=vol.volume_id, capability=data.capability)
    if short := _short_device(vol, target, mode):
        return False, f"new volume {vol.volume_id}: {short}"
    if dataio.holds(target, mode=mode, token=expected):
        return (
            True,
            f"new volume {vol.volume_id} holds the source's data at the right point in time",
        )
    if dataio.holds(target, mode=mode, token=data.token):
        return False, "new volume holds data written after the snapshot: not a point-in-time copy"
    return False, "new volume does not hold the source's data"


def _short_device(vol: models.Volume, target: str, mode: M) -> str:
    """Why the published device holds less than the volume's answered size, or "".

    Only a block device shows its exact size; a filesystem's metadata hides it.
    """
    if mode is not M.BLOCK:
        return ""
    seen = dataio.size_of(target, mode=mode)
    if seen >= vol.capacity_bytes:
        return ""
    return f"the driver answered {vol.capacity_bytes} bytes, the node sees a {seen}-byte device"


def snapshot_metadata(ctx: context.Context) -> None:
    if ctx.snapshot is None:
        ctx.results.set(F.SNAPSHOT_METADATA, None, "not attempted: no snapshot")
        return
    with ctx.results.attempt(F.SNAPSHOT_METADATA):
        chunks = list(ctx.session.controller.allocated_extents(ctx.snapshot.snapshot_id))
        extents = [e for chunk in chunks for e in chunk.extents]
        covers_start = any(e.offset == 0 and e.length > 0 for e in extents)
        has_data = ctx.data_volume() is not None
        ok = covers_start or not has_data
        ctx.results.set(
            F.SNAPSHOT_METADATA,
            ok,
            f"GetMetadataAllocated: {len(extents)} extents in {len(chunks)} messages"
            + ("" if ok else "; the written block is missing"),
        )


def online_expansion(ctx: context.Context) -> None:
    """Grow the published data volume and check the node sees the new size."""
    data = ctx.data_volume()
    node = ctx.first_node
    if data is None or node is None:
        ctx.results.set(
            F.EXPANSION_ONLINE, None, f"not attempted: {ctx.node_reason or 'no published volume'}"
        )
        return
    new_size = 2 * ctx.size
    before = dataio.size_of(data.target, mode=data.capability.mode)
    with ctx.results.attempt(F.EXPANSION_ONLINE, F.EXPANSION_NODE):
        try:
            result = ctx.session.controller.expand_volume(
                data.volume.volume_id, size=new_size, capability=data.capability
            )
        except errors.Unsupported as err:
            ctx.results.set(F.EXPANSION_ONLINE, False, str(err))
            ctx.results.set(F.EXPANSION_NODE, None, "not attempted: no controller expansion")
            return
        node_expanded = False
        if result.node_expansion_required or ctx.declared.has_node(
            models.NodeCapability.EXPAND_VOLUME
        ):
            ctx.session.nodes[node].node_expand(
                data.volume.volume_id,
                volume_path=data.target,
                size=new_size,
                staging_path=data.staging,
                capability=data.capability,
            )
            node_expanded = True
        else:
            ctx.results.set(F.EXPANSION_NODE, False, "driver asked for no node expansion")
        seen = dataio.size_of(data.target, mode=data.capability.mode)
        # A filesystem reports less than its device (metadata), so for mounts
        # the test is growth, for devices the exact size.
        ok = seen > before if data.capability.mode is M.FILESYSTEM else seen >= new_size
        evidence = (
            f"ControllerExpandVolume answered {result.capacity_bytes} bytes; node sees "
            f"{before} -> {seen} bytes after growing to {new_size} while published"
        )
        ctx.results.set(F.EXPANSION_ONLINE, ok, evidence)
        if node_expanded:
            ctx.results.set(F.EXPANSION_NODE, ok, f"NodeExpandVolume on {node}: {evidence}")
        if ctx.results.get(F.EXPANSION_CONTROLLER) is None:
            ctx.results.set(F.EXPANSION_CONTROLLER, ok, evidence)
