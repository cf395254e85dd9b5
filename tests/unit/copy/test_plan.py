"""Extent planning and zero detection: pure functions, no I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csi_vm.copy import plan

MiB = 1 << 20
B = plan.ZERO_BLOCK


@st.composite
def extent_lists(draw: st.DrawFn) -> list[plan.Extent]:
    """Ascending, non-overlapping extents, possibly touching."""
    out: list[plan.Extent] = []
    pos = 0
    for _ in range(draw(st.integers(0, 8))):
        pos += draw(st.integers(0, 3 * MiB))
        length = draw(st.integers(1, 3 * MiB))
        out.append((pos, length))
        pos += length
    return out


@pytest.mark.parametrize(
    ("extents", "size", "expected"),
    [
        ([], 100, []),
        ([(0, 50)], 100, [(0, 50)]),
        ([(90, 20)], 100, [(90, 10)]),
        ([(100, 20)], 100, []),
        ([(0, 10), (200, 5)], 100, [(0, 10)]),
    ],
    ids=["empty", "inside", "cut-at-end", "past-end", "one-past-end"],
)
def test_clip(extents: list[plan.Extent], size: int, expected: list[plan.Extent]) -> None:
    assert plan.clip(extents, size=size) == expected


@pytest.mark.parametrize(
    ("extents", "expected"),
    [
        ([(0, 10), (10, 5)], [(0, 15)]),
        ([(0, 10), (5, 10)], [(0, 15)]),
        ([(0, 10), (11, 5)], [(0, 10), (11, 5)]),
        ([(0, 0), (3, 4)], [(3, 4)]),
    ],
    ids=["touching", "overlapping", "apart", "empty-dropped"],
)
def test_merge(extents: list[plan.Extent], expected: list[plan.Extent]) -> None:
    assert plan.merge(extents) == expected


def test_split_cuts_on_piece_multiples() -> None:
    assert plan.split([(3 * MiB, 10 * MiB)], piece=4 * MiB) == [
        (3 * MiB, 1 * MiB),
        (4 * MiB, 4 * MiB),
        (8 * MiB, 4 * MiB),
        (12 * MiB, 1 * MiB),
    ]


def test_split_refuses_a_zero_piece() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan.split([(0, 1)], piece=0)


@given(extents=extent_lists(), piece=st.sampled_from([4096, MiB, 8 * MiB]))
def test_split_covers_exactly_the_extents(extents: list[plan.Extent], piece: int) -> None:
    pieces = plan.split(extents, piece=piece)
    assert plan.merge(pieces) == plan.merge(extents)
    assert all(0 < length <= piece for _, length in pieces)
    # A piece never straddles a multiple of the piece size.
    assert all(off // piece == (off + length - 1) // piece for off, length in pieces)


@pytest.mark.parametrize(
    ("extents", "size", "expected"),
    [
        ([], 100, [(0, 100)]),
        ([(0, 100)], 100, []),
        ([(10, 20)], 100, [(0, 10), (30, 70)]),
        ([(0, 10), (10, 10), (50, 60)], 100, [(20, 30)]),
    ],
    ids=["all-hole", "all-data", "middle", "touching-and-past-end"],
)
def test_holes(extents: list[plan.Extent], size: int, expected: list[plan.Extent]) -> None:
    assert plan.holes(extents, size=size) == expected


@given(extents=extent_lists(), size=st.integers(0, 40 * MiB))
def test_holes_and_data_tile_the_image(extents: list[plan.Extent], size: int) -> None:
    data = plan.clip(extents, size=size)
    tiles = sorted(data + plan.holes(extents, size=size))
    assert plan.merge(tiles) == ([(0, size)] if size else [])
    assert plan.total(tiles) == size


@pytest.mark.parametrize(
    ("extents", "expected"),
    [
        ([], set()),
        ([(0, 1)], {0}),
        ([(MiB - 1, 2)], {0, 1}),
        ([(2 * MiB, MiB)], {2}),
        ([(0, 3 * MiB)], {0, 1, 2}),
    ],
    ids=["none", "first-byte", "straddles", "exact-chunk", "three"],
)
def test_touched_chunks(extents: list[plan.Extent], expected: set[int]) -> None:
    assert plan.touched_chunks(extents, chunk=MiB) == expected


def _blocks(*kinds: str) -> bytearray:
    """A buffer of whole blocks: 'z' all zeros, 'd' data, 'e' data in the last byte only."""
    out = bytearray()
    for kind in kinds:
        block = bytearray(B)
        if kind == "d":
            block[0] = 1
        elif kind == "e":
            block[-1] = 1
        out += block
    return out


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ("zzz", []),
        ("ddd", [(0, 3 * B)]),
        ("zdz", [(B, B)]),
        ("dzd", [(0, B), (2 * B, B)]),
        ("zze", [(2 * B, B)]),
        ("ddzzdd", [(0, 2 * B), (4 * B, 2 * B)]),
    ],
    ids=["zeros", "data", "middle", "ends", "last-byte", "two-runs"],
)
def test_data_runs(kinds: str, expected: list[plan.Extent]) -> None:
    buf = _blocks(*kinds)
    assert plan.data_runs(buf, length=len(buf)) == expected


def test_data_runs_ignores_bytes_past_length() -> None:
    buf = _blocks("z", "d")
    assert plan.data_runs(buf, length=B) == []


def test_data_runs_partial_last_block() -> None:
    buf = bytearray(B + 100)
    buf[B + 50] = 7
    assert plan.data_runs(buf, length=B + 100) == [(B, 100)]
    assert plan.data_runs(bytearray(B + 100), length=B + 100) == []


@given(st.lists(st.sampled_from("zde"), max_size=12))
def test_data_runs_matches_a_block_by_block_reference(kinds: list[str]) -> None:
    buf = _blocks(*kinds)
    expected = plan.merge((i * B, B) for i in range(len(kinds)) if any(buf[i * B : (i + 1) * B]))
    assert plan.data_runs(buf, length=len(buf)) == expected
