"""Active verification: small checks that create, use and remove test volumes.

`run` calls the checks in an order where later ones reuse what earlier ones
proved (a published volume with known data is the base of the snapshot,
restore, clone and online expansion checks).
"""

from __future__ import annotations

from capabilities.checks import context, controller, data, sharing

STEPS = (
    controller.access_matrix,
    controller.topology_and_capacity,
    data.node_io,
    data.snapshot_restore,
    data.clone,
    data.snapshot_metadata,
    controller.group_snapshot,
    controller.offline_expansion,
    data.online_expansion,
    controller.modify,
    sharing.multi_node,
)


def run(ctx: context.Context) -> None:
    for step in STEPS:
        ctx.results.checkpoint()
        step(ctx)
