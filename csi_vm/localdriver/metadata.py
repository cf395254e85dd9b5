"""SnapshotMetadata: allocated ranges of a snapshot, changed ranges between two.

Allocated ranges come straight from SEEK_DATA/SEEK_HOLE on the snapshot's
image (variable-length extents). Changed ranges compare the two images in
64 KiB blocks wherever either holds data; runs of changed blocks are merged.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

from csi_vm import errors
from csi_vm.localdriver import extents, lookup, model, policy
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

#: extents per streamed message when the client leaves max_results at 0
DEFAULT_BATCH = 1024


@dataclasses.dataclass(frozen=True)
class Stream:
    capacity: int
    batches: Iterator[list[extents.Extent]]


def _check_offset(offset: int, size: int) -> None:
    if offset < 0 or offset > size:
        raise errors.OutOfRange(f"starting_offset {offset} is outside the snapshot's {size} bytes")


def _batched(found: Iterator[extents.Extent], size: int) -> Iterator[list[extents.Extent]]:
    batch: list[extents.Extent] = []
    for extent in found:
        batch.append(extent)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _open(ctx: Context, snap: model.Snapshot) -> int:
    try:
        return os.open(ctx.images.snapshot_path(snap.snapshot_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise errors.NotFound(f"snapshot {snap.snapshot_id}: its image file is missing") from err


def allocated(ctx: Context, *, snapshot_id: str, offset: int, max_results: int) -> Stream:
    policy.require(ctx.config, Feature.SNAPSHOT, rpc="GetMetadataAllocated")
    with ctx.db.read() as cur:
        snap = lookup.snapshot(cur, snapshot_id)
    _check_offset(offset, snap.size)
    if max_results < 0:
        raise errors.InvalidInput("max_results must not be negative")

    def generate() -> Iterator[extents.Extent]:
        fd = _open(ctx, snap)  # opened on first read, so an unread stream holds no fd
        try:
            yield from extents.data_extents(fd, start=offset)
        finally:
            os.close(fd)

    return Stream(snap.size, _batched(generate(), max_results or DEFAULT_BATCH))


def delta(ctx: Context, *, base_id: str, target_id: str, offset: int, max_results: int) -> Stream:
    policy.require(ctx.config, Feature.SNAPSHOT, rpc="GetMetadataDelta")
    with ctx.db.read() as cur:
        base = lookup.snapshot(cur, base_id, field="base_snapshot_id")
        target = lookup.snapshot(cur, target_id, field="target_snapshot_id")
    if base.source_volume_id != target.source_volume_id:
        raise errors.InvalidInput(
            "base_snapshot_id and target_snapshot_id are snapshots of different volumes"
        )
    _check_offset(offset, target.size)
    if max_results < 0:
        raise errors.InvalidInput("max_results must not be negative")

    def generate() -> Iterator[extents.Extent]:
        base_fd = _open(ctx, base)
        try:
            target_fd = _open(ctx, target)
            try:
                yield from extents.changed_extents(base_fd, target_fd, start=offset)
            finally:
                os.close(target_fd)
        finally:
            os.close(base_fd)

    return Stream(target.size, _batched(generate(), max_results or DEFAULT_BATCH))
