"""Checks that need only the controller service."""

from __future__ import annotations

from capabilities import model
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
    mode = M.BLOCK if ctx.accepted.get((M.BLOCK, A.SINGLE_NODE_WRITER)) else M.FILESYSTEM
    with ctx.results.attempt(F.EXPANSION_CONTROLLER):
        vol = ctx.session.volume(
            "expand-offline", size=ctx.size, capability=context.capability(mode)
        )
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
        grown = result.capacity_bytes >= 2 * ctx.size
        evidence = f"unpublished volume grown from {ctx.size} to {result.capacity_bytes} bytes"
        ctx.results.set(F.EXPANSION_CONTROLLER, grown, evidence)
        ctx.results.set(F.EXPANSION_OFFLINE, grown, evidence)
        ctx.session.remove("volume", vol.volume_id)


def modify(ctx: context.Context) -> None:
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
            # Which parameters are mutable is driver specific; without them a
            # refusal says nothing about the RPC itself.
            if not ctx.modify_parameters:
                ctx.results.set(
                    F.MODIFY_VOLUME,
                    None,
                    "driver wants specific mutable parameters "
                    f"(set modify_parameters in the config): {err}",
                )
                return
            raise
        given = ", ".join(sorted(ctx.modify_parameters)) or "no parameters"
        ctx.results.set(F.MODIFY_VOLUME, True, f"ControllerModifyVolume accepted ({given})")
