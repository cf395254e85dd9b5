"""Which volume mode the expansion check measures on the node (pure logic, a fake context)."""

from __future__ import annotations

import types

import pytest

from capabilities.checks import controller
from csi_vm.csi import models

M = models.VolumeMode
A = models.AccessMode


def _ctx(*, block: bool, filesystem: bool, block_io: bool | None) -> object:
    """A fake probe context: which modes were created, which read and written on the node."""
    accepted = {
        (M.BLOCK, A.SINGLE_NODE_WRITER): block,
        (M.FILESYSTEM, A.SINGLE_NODE_WRITER): filesystem,
    }
    published = {}
    if block_io is not None:  # None: no node I/O was tried
        published = {M.FILESYSTEM: "fs"} if filesystem else {}
        if block_io:
            published[M.BLOCK] = "block"
    return types.SimpleNamespace(accepted=accepted, published=published)


@pytest.mark.parametrize(
    ("block", "filesystem", "block_io", "expected"),
    [
        (True, True, True, M.BLOCK),
        (True, True, None, M.BLOCK),  # no node I/O checked: the exact size is best
        (True, True, False, M.FILESYSTEM),  # a Pod that may not open the device
        (True, False, False, M.BLOCK),  # nothing else to measure
        (False, True, None, M.FILESYSTEM),
    ],
)
def test_expansion_is_measured_where_the_node_can_see_it(
    block: bool, filesystem: bool, block_io: bool | None, expected: models.VolumeMode
) -> None:
    ctx = _ctx(block=block, filesystem=filesystem, block_io=block_io)
    assert controller._measurable_mode(ctx) is expected  # type: ignore[arg-type]
