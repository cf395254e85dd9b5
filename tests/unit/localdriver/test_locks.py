"""Per-object try-locks."""

from __future__ import annotations

import pytest

from csi_vm import errors
from csi_vm.localdriver import locks


def test_exclusive_refuses_a_second_holder() -> None:
    keyed = locks.KeyedLocks()
    with keyed.hold(exclusive=["volume:a"], what="a"):
        with (
            pytest.raises(errors.Busy, match="a is in flight"),
            keyed.hold(exclusive=["volume:a"], what="a"),
        ):
            pass
        with pytest.raises(errors.Busy), keyed.hold(shared=["volume:a"], what="a"):
            pass
        with keyed.hold(exclusive=["volume:b"], what="b"):
            pass
    with keyed.hold(exclusive=["volume:a"], what="a"):
        pass  # released again


def test_shared_holders_overlap_but_block_exclusive() -> None:
    keyed = locks.KeyedLocks()
    with (
        keyed.hold(shared=["volume:a"], what="a"),
        keyed.hold(shared=["volume:a"], what="a"),
        pytest.raises(errors.Busy),
        keyed.hold(exclusive=["volume:a"], what="a"),
    ):
        pass
    with keyed.hold(exclusive=["volume:a"], what="a"):
        pass


def test_all_or_nothing() -> None:
    keyed = locks.KeyedLocks()
    with keyed.hold(exclusive=["b"], what="b"):
        with pytest.raises(errors.Busy), keyed.hold(exclusive=["a", "b"], what="a and b"):
            pass
        with keyed.hold(exclusive=["a"], what="a"):
            pass  # "a" was not left taken by the failed attempt


def test_duplicates_are_harmless() -> None:
    keyed = locks.KeyedLocks()
    with keyed.hold(exclusive=["a", "a"], shared=["a", "c", "c"], what="x"):
        pass
    with keyed.hold(exclusive=["a", "c"], what="x"):
        pass
