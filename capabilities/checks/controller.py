"""Checks that need only the controller service."""

from __future__ import annotations

from capabilities import dataio, model
from capabilities.checks import context
from csi_vm import errors
from csi_vm.csi import models

F = model.Feature
M = models.VolumeMode
A = models.AccessMode

# Short access mode names for evidence lines.
_SHORT = {
    A.SINGLE_NODE_WRITER: "SNW",
    A.SINGLE_NODE_READER_ONLY: "SNRO",
    A.MULTI_NODE_READER_ONLY: "MNRO",
    A.MULTI_NODE_SINGLE_WRITER: "MNSW",
    A.MULTI_NODE_MULTI_WRITER: "MNMW",
    A.SINGLE_NODE_SINGLE_WRITER: "SNSW",
    A.SINGLE_NODE_MULTI_WRITER: "SNMW",
}


def access_matrix(ctx: context.Context) -> None:
    """Create (and at once delete) a volume for every volume mode x access mode."""
    features = (F.BLOCK, F.FILESYSTEM, F.RWX_BLOCK, F.RWX_FILESYSTEM)
    with ctx.results.attempt(*features):
        for mode in M:
            for access in A:
                ctx.accepted[(mode, access)] = _try_create(ctx, mode, access)
        for mode, single, multi in (
            (M.BLOCK, F.BLOCK, F.RWX_BLOCK),
            (M.FILESYSTEM, F.FILESYSTEM, F.RWX_FILESYSTEM),
        ):
            ctx.results.set(
                single, ctx.accepted[(mode, A.SINGLE_NODE_WRITER)], _matrix_line(ctx, mode)
            )
            ctx.results.set(
                multi, ctx.accepted[(mode, A.MULTI_NODE_MULTI_WRITER)], _matrix_line(ctx, mode)
            )


def _try_create(ctx: context.Context, mode: M, access: A) -> bool:
    cap = context.capability(mode, access)
    try:
        vol = ctx.session.volume(f"{mode}-{_SHORT[access].lower()}", size=ctx.size, capability=cap)
    except (errors.Rejected, errors.Unsupported):
        return False
    if access is A.SINGLE_NODE_WRITER:
        ctx.topology = vol.accessible_topology
    if access is A.MULTI_NODE_MULTI_WRITER:
        ctx.multi_topology = vol.accessible_topology
    ctx.session.remove("volume", vol.volume_id)
    return True


def _matrix_line(ctx: context.Context, mode: M) -> str:
    ok = [_SHORT[a] for a in A if ctx.accepted.get((mode, a))]
    refused = [_SHORT[a] for a in A if not ctx.accepted.get((mode, a))]
    line = f"{mode} volumes created for {','.join(ok) or 'no access mode'}"
    if refused:
        line += f"; refused {','.join(refused)}"
    return line


def topology_and_capacity(ctx: context.Context) -> None:
    with ctx.results.attempt(F.TOPOLOGY):
        if ctx.topology:
            segments = ", ".join(f"{k}={v}" for t in ctx.topology for k, v in t.segments.items())
            ctx.results.set(F.TOPOLOGY, True, f"volumes report accessible topology {segments}")
        else:
            ctx.results.set(F.TOPOLOGY, False, "created volumes report no accessible topology")
    with ctx.results.attempt(F.CAPACITY):
        available, maximum, _ = ctx.session.controller.capacity()
        extra = f", largest volume {maximum} bytes" if maximum else ""
        ctx.results.set(F.CAPACITY, True, f"GetCapacity: {available} bytes available{extra}")


def group_snapshot(ctx: context.Context) -> None:
    """Group snapshot of two fresh volumes, then removed."""
    mode = M.BLOCK if ctx.accepted.get((M.BLOCK, A.SINGLE_NODE_WRITER)) else M.FILESYSTEM
    cap = context.capability(mode)
    with ctx.results.attempt(F.GROUP_SNAPSHOT):
        ids = tuple(
            ctx.session.volume(f"group-{i}", size=ctx.size, capability=cap).volume_id
            for i in (1, 2)
        )
        group = ctx.session.group_snapshot("group", volume_ids=ids)
        if len(group.snapshots) != len(ids):
            ctx.results.set(
                F.GROUP_SNAPSHOT,
                False,
                f"group snapshot holds {len(group.snapshots)} snapshots for {len(ids)} volumes",
            )
            return
        ctx.session.remove("group_snapshot", group.group_snapshot_id)
        ctx.results.set(
            F.GROUP_SNAPSHOT, True, f"group snapshot of {len(ids)} volumes created and deleted"
        )


def offline_expansion(ctx: context.Context) -> None:
    """Grow an unpublished volume through the controller."""
    mode = _measurable_mode(ctx)
    with ctx.results.attempt(F.EXPANSION_CONTROLLER):
        vol = ctx.session.volume(
            "expand-offline", size=ctx.size, capability=context.capability(mode)
        )
        before = _node_size(ctx, vol.volume_id, mode) if mode is M.FILESYSTEM else ctx.size
        try:
            result = ctx.session.controller.expand_volume(vol.volume_id, size=2 * ctx.size)
        except errors.Unsupported as err:
            ctx.results.set(F.EXPANSION_CONTROLLER, False, str(err))
            ctx.results.set(F.EXPANSION_OFFLINE, False, "no controller expansion")
            return
        except errors.Rejected as err:
            # FAILED_PRECONDITION here means online-only expansion.
            ctx.results.set(F.EXPANSION_OFFLINE, False, f"unpublished volume not expanded: {err}")
            return
        grown, evidence = _seen_grown(
            ctx, vol.volume_id, mode, answered=result.capacity_bytes, before=before
        )
        ctx.results.set(F.EXPANSION_CONTROLLER, grown, evidence)
        ctx.results.set(F.EXPANSION_OFFLINE, grown, evidence)
        ctx.session.remove("volume", vol.volume_id)


def _measurable_mode(ctx: context.Context) -> M:
    """The mode whose size this node can measure: block, unless its I/O failed here.

    A probe in a Pod may publish block volumes but not open them (the
    container's device cgroup): a filesystem's growth still shows there.
    """
    block = ctx.accepted.get((M.BLOCK, A.SINGLE_NODE_WRITER))
    if block and M.FILESYSTEM in ctx.published and M.BLOCK not in ctx.published:
        return M.FILESYSTEM
    return M.BLOCK if block else M.FILESYSTEM


def _node_size(ctx: context.Context, volume_id: str, mode: M, *, expand_to: int = 0) -> int | None:
    """The size the first node sees (after NodeExpandVolume when `expand_to`); None without one."""
    node = ctx.first_node
    if node is None:
        return None
    cap = context.capability(mode)
    staging, target = ctx.attach(node, volume_id=volume_id, capability=cap)
    node_expands = ctx.declared.has_node(models.NodeCapability.EXPAND_VOLUME)
    if expand_to and mode is M.FILESYSTEM and node_expands:
        ctx.session.nodes[node].node_expand(
            volume_id, volume_path=target, size=expand_to, staging_path=staging, capability=cap
        )
    seen = dataio.size_of(target, mode=mode)
    ctx.session.remove("publish", volume_id)
    ctx.session.remove("stage", volume_id)
    return seen


def _seen_grown(
    ctx: context.Context, volume_id: str, mode: M, *, answered: int, before: int | None
) -> tuple[bool | None, str]:
    """Did the expansion reach the node? Publish the volume and measure what it shows.

    A driver may answer the new capacity and leave the device as it was: only
    the size the node sees proves the growth: a device's exact size, or for a
    filesystem (whose metadata hides the device size) growth over `before`.
    """
    said = f"ControllerExpandVolume answered {answered} bytes"
    if answered < 2 * ctx.size:
        return False, f"{said}, less than the {2 * ctx.size} asked for"
    seen = _node_size(ctx, volume_id, mode, expand_to=answered)
    if seen is None or before is None:
        return None, f"{said}; the device was not checked: {ctx.node_reason}"
    node = ctx.first_node
    ok = seen >= answered if mode is M.BLOCK else seen > before
    verdict = "" if ok else ": the expansion did not reach the device"
    return ok, f"{said}; {node} sees {seen} bytes{verdict}"


def modify(ctx: context.Context) -> None:
    if not ctx.modify_parameters:
        # Which parameters are mutable is driver specific, and CSI requires
        # some: a call without them would be refused whatever the driver can
        # do, and a refused call must never read as a tick.
        ctx.results.set(
            F.MODIFY_VOLUME,
            None,
            "not attempted: set modify_parameters in the config to verify ControllerModifyVolume",
        )
        return
    data = ctx.data_volume()
    with ctx.results.attempt(F.MODIFY_VOLUME):
        if data is None:
            vol = ctx.session.volume(
                "modify", size=ctx.size, capability=context.capability(M.FILESYSTEM)
            )
            volume_id = vol.volume_id
        else:
            volume_id = data.volume.volume_id
        try:
            ctx.session.controller.modify_volume(
                volume_id, mutable_parameters=ctx.modify_parameters
            )
        except errors.Unsupported as err:
            ctx.results.set(F.MODIFY_VOLUME, False, str(err))
            return
        except errors.Rejected as err:
            ctx.results.set(F.MODIFY_VOLUME, False, f"ControllerModifyVolume refused: {err}")
            return
        given = ", ".join(sorted(ctx.modify_parameters)) or "no parameters"
        ctx.results.set(F.MODIFY_VOLUME, True, f"ControllerModifyVolume accepted ({given})")
