"""SnapshotMetadata: allocated and changed block ranges of block-volume snapshots."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from csi_vm.csi.pb import csi_pb2

from . import data, rpc
from .caps import Caps, Probe
from .ledger import Ledger
from .target import Target, require_access

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(120)]

Code = rpc.Code
MiB = 1024 * 1024
KiB = 1024

# Where the test writes: a range present in both snapshots, a range written
# between them, and a range never written.
FIRST = (4 * MiB, 64 * KiB)
SECOND = (12 * MiB, 64 * KiB)
NEVER = (20 * MiB, 64 * KiB)


@pytest.fixture(autouse=True)
def _needs_metadata(caps: Caps) -> None:
    if not caps.service_has("SNAPSHOT_METADATA_SERVICE"):
        pytest.skip(
            "SNAPSHOT_METADATA_SERVICE not declared; its UNIMPLEMENTED answer is checked in "
            "test_capability_rules"
        )


@dataclasses.dataclass(frozen=True)
class Pair:
    volume: csi_pb2.Volume
    base: csi_pb2.Snapshot
    target: csi_pb2.Snapshot


@pytest.fixture
def pair(ledger: Ledger, csi_target: Target, access_probes: dict[str, Probe], caps: Caps) -> Pair:
    """Two snapshots of one block volume: FIRST written before both, SECOND between them."""
    require_access(csi_target, access_probes, "block")
    assert NEVER[0] + NEVER[1] <= caps.volume_size
    volume = ledger.create_volume(access="block")
    attachment = ledger.attach(volume, access="block")
    data.write_device(attachment.target_path, FIRST[0], data.pattern("first", FIRST[1]))
    base = ledger.create_snapshot(volume.volume_id)
    data.write_device(attachment.target_path, SECOND[0], data.pattern("second", SECOND[1]))
    target = ledger.create_snapshot(volume.volume_id)
    return Pair(volume, base, target)


Ranges = list[tuple[int, int]]


def _ranges(
    responses: list[csi_pb2.GetMetadataAllocatedResponse] | list[csi_pb2.GetMetadataDeltaResponse],
    *,
    capacity: int,
    max_results: int = 0,
) -> Ranges:
    """Check a metadata stream against the spec and return its (offset, size) tuples."""
    assert responses, "the stream carried no message"
    kinds = {r.block_metadata_type for r in responses}
    assert len(kinds) == 1, "block_metadata_type changed within the stream"
    kind = kinds.pop()
    assert kind in (csi_pb2.FIXED_LENGTH, csi_pb2.VARIABLE_LENGTH), f"metadata type {kind}"
    assert {r.volume_capacity_bytes for r in responses} == {capacity}, (
        "volume_capacity_bytes differs from the volume's capacity"
    )
    ranges: Ranges = []
    for response in responses:
        if max_results:
            assert len(response.block_metadata) <= max_results
        ranges += [(b.byte_offset, b.size_bytes) for b in response.block_metadata]
    for offset, size in ranges:
        assert offset >= 0 and size > 0 and offset + size <= capacity, (offset, size)
    for (offset, size), (next_offset, _) in itertools.pairwise(ranges):
        assert offset + size <= next_offset, "ranges overlap or are out of order"
    if kind == csi_pb2.FIXED_LENGTH:
        assert len({size for _, size in ranges}) <= 1, "FIXED_LENGTH ranges of several sizes"
    return ranges


def _covers(ranges: Ranges, span: tuple[int, int]) -> bool:
    start, end = span[0], span[0] + span[1]
    for offset, size in ranges:
        if offset <= start < offset + size:
            start = offset + size
        if start >= end:
            return True
    return False


def _touches(ranges: Ranges, span: tuple[int, int]) -> bool:
    return any(o < span[0] + span[1] and span[0] < o + s for o, s in ranges)


def _allocated(
    csi: rpc.Csi, snapshot_id: str, **fields: int
) -> list[csi_pb2.GetMetadataAllocatedResponse]:
    return csi.metadata.GetMetadataAllocated(
        csi_pb2.GetMetadataAllocatedRequest(snapshot_id=snapshot_id, **fields)
    )


def _delta(csi: rpc.Csi, pair: Pair, **fields: int) -> list[csi_pb2.GetMetadataDeltaResponse]:
    return csi.metadata.GetMetadataDelta(
        csi_pb2.GetMetadataDeltaRequest(
            base_snapshot_id=pair.base.snapshot_id,
            target_snapshot_id=pair.target.snapshot_id,
            **fields,
        )
    )


def test_allocated_covers_written_data(csi: rpc.Csi, pair: Pair) -> None:
    capacity = pair.volume.capacity_bytes
    base = _ranges(_allocated(csi, pair.base.snapshot_id), capacity=capacity)
    assert _covers(base, FIRST), "data written before the snapshot is not reported allocated"
    target = _ranges(_allocated(csi, pair.target.snapshot_id), capacity=capacity)
    assert _covers(target, FIRST) and _covers(target, SECOND)


def test_allocated_respects_max_results_and_starting_offset(csi: rpc.Csi, pair: Pair) -> None:
    capacity = pair.volume.capacity_bytes
    start = SECOND[0] - MiB
    ranges = _ranges(
        _allocated(csi, pair.target.snapshot_id, max_results=1, starting_offset=start),
        capacity=capacity,
        max_results=1,
    )
    assert ranges and ranges[0][0] + ranges[0][1] > start, "a range ends before starting_offset"
    assert _covers(ranges, SECOND)


def test_delta_covers_changes_and_only_changes(csi: rpc.Csi, pair: Pair) -> None:
    ranges = _ranges(_delta(csi, pair), capacity=pair.volume.capacity_bytes)
    assert _covers(ranges, SECOND), "data written between the snapshots is not in the delta"
    assert not _touches(ranges, NEVER), "a range never written is reported as changed"


def test_delta_respects_max_results_and_starting_offset(csi: rpc.Csi, pair: Pair) -> None:
    start = SECOND[0]
    ranges = _ranges(
        _delta(csi, pair, max_results=1, starting_offset=start),
        capacity=pair.volume.capacity_bytes,
        max_results=1,
    )
    assert ranges and ranges[0][0] + ranges[0][1] > start
    assert _covers(ranges, SECOND)


@pytest.mark.parametrize("where", ["negative", "past-the-end"])
def test_bad_starting_offset_is_out_of_range(csi: rpc.Csi, pair: Pair, where: str) -> None:
    offset = -1 if where == "negative" else pair.volume.capacity_bytes + MiB
    with rpc.refused(Code.OUT_OF_RANGE):
        _allocated(csi, pair.target.snapshot_id, starting_offset=offset)
    with rpc.refused(Code.OUT_OF_RANGE):
        _delta(csi, pair, starting_offset=offset)


def test_unknown_snapshots_are_not_found(csi: rpc.Csi, pair: Pair) -> None:
    with rpc.refused(Code.NOT_FOUND):
        _allocated(csi, "csi-conformance-no-such-snapshot")
    with rpc.refused(Code.NOT_FOUND):
        csi.metadata.GetMetadataDelta(
            csi_pb2.GetMetadataDeltaRequest(
                base_snapshot_id="csi-conformance-no-such-snapshot",
                target_snapshot_id=pair.target.snapshot_id,
            )
        )
