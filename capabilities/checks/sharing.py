"""Is a multi-writer volume really shared across nodes?

Only a write on one node read back on another proves it. A driver may accept
MULTI_NODE_MULTI_WRITER and still pin the volume to one node; with a single
node endpoint that can only be inferred from the volume's topology, and an
inference never makes the plan pick live migration without a storage copy.
"""

from __future__ import annotations

import re
import uuid

from capabilities import dataio, model
from capabilities.checks import context
from csi_vm import errors
from csi_vm.csi import models

F = model.Feature
M = models.VolumeMode
A = models.AccessMode

# Topology keys that name a single host (e.g. topology.hostpath.csi/node,
# kubernetes.io/hostname) as opposed to a zone or region.
_NODE_KEY = re.compile(r"node|host", re.IGNORECASE)


def multi_node(ctx: context.Context) -> None:
    mode = _shared_mode(ctx)
    if mode is None:
        ctx.results.set(
            F.MULTI_NODE_SHARED, False, "the driver refuses MULTI_NODE_MULTI_WRITER volumes"
        )
        return
    if len(ctx.nodes) < 2 or ctx.node_reason:
        _infer(ctx)
        return
    with ctx.results.attempt(F.MULTI_NODE_SHARED):
        _write_here_read_there(ctx, mode)


def _shared_mode(ctx: context.Context) -> M | None:
    for mode in (M.BLOCK, M.FILESYSTEM):
        if ctx.accepted.get((mode, A.MULTI_NODE_MULTI_WRITER)):
            return mode
    return None


def _write_here_read_there(ctx: context.Context, mode: M) -> None:
    first, second = ctx.nodes[0], ctx.nodes[1]
    cap = context.capability(mode, A.MULTI_NODE_MULTI_WRITER)
    vol = ctx.session.volume("shared", size=ctx.size, capability=cap)
    token = f"csi-vm-shared-{uuid.uuid4().hex[:12]}"
    _, target = ctx.attach(first, volume_id=vol.volume_id, capability=cap)
    dataio.write(target, mode=mode, token=token)
    if mode is M.FILESYSTEM:
        # Two kernels mounting one non-cluster filesystem at once corrupt it:
        # let go on the first node before the second one mounts.
        ctx.session.unpublish_all()
    try:
        _, other = ctx.attach(second, volume_id=vol.volume_id, capability=cap)
    except errors.CsiVmError as err:
        ctx.results.set(
            F.MULTI_NODE_SHARED,
            False,
            f"volume written on {first} cannot be published on {second}: {err}",
        )
        return
    shared = dataio.holds(other, mode=mode, token=token)
    evidence = (
        f"{mode} volume written on {first} "
        + ("and read back on " if shared else "but not seen on ")
        + second
    )
    ctx.results.set(F.MULTI_NODE_SHARED, shared, evidence)


def _infer(ctx: context.Context) -> None:
    pinned = _pinned_to(ctx.multi_topology)
    if pinned:
        ctx.results.infer(
            F.MULTI_NODE_SHARED,
            False,
            "inferred, not verified: MULTI_NODE_MULTI_WRITER accepted "
            f"but the volume's topology pins it to {pinned}",
        )
        return
    reason = ctx.node_reason or "needs two node endpoints"
    ctx.results.infer(
        F.MULTI_NODE_SHARED,
        None,
        f"not verified: {reason}; topology does not pin volumes to one node",
    )


def _pinned_to(topology: tuple[models.Topology, ...]) -> str:
    """The single node a volume's topology names, or '' when it is not pinned."""
    hosts = {
        f"{key}={value}"
        for t in topology
        for key, value in t.segments.items()
        if _NODE_KEY.search(key)
    }
    return hosts.pop() if len(hosts) == 1 else ""
