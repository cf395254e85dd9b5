"""Leader election through a Lease, against the fake API server (a fake, not a cluster)."""

from __future__ import annotations

import datetime

import pytest

from csi_vm.controller import context, kinds, leader

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 11, 28, 10, 0, tzinfo=datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


def _elector(ctx: context.Context, identity: str, clock: Clock) -> leader.Elector:
    return leader.Elector(
        objs=ctx.objs, namespace="csi-vm", name="lease", identity=identity, clock=clock
    )


def test_one_replica_leads_and_renews(ctx: context.Context) -> None:
    clock = Clock()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    assert a.try_acquire()
    assert not b.try_acquire()
    clock.now += datetime.timedelta(seconds=10)
    assert a.try_acquire()  # renewal
    clock.now += datetime.timedelta(seconds=10)
    assert not b.try_acquire()  # renewed 10 s ago: not expired
    lease = ctx.objs.get(kinds.LEASE, "lease", namespace="csi-vm")
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseTransitions"] == 0


def test_an_expired_lease_is_taken_over(ctx: context.Context) -> None:
    clock = Clock()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    assert a.try_acquire()
    clock.now += datetime.timedelta(seconds=leader.LEASE_SECONDS + 1)
    assert b.try_acquire()
    assert not a.try_acquire()  # the old leader sees it lost
    lease = ctx.objs.get(kinds.LEASE, "lease", namespace="csi-vm")
    assert (lease["spec"]["holderIdentity"], lease["spec"]["leaseTransitions"]) == ("b", 1)


def test_a_released_lease_is_taken_at_once(ctx: context.Context) -> None:
    clock = Clock()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    assert a.try_acquire()
    a.release()
    assert b.try_acquire()


def test_a_stale_write_loses_the_race(ctx: context.Context) -> None:
    """Two replicas read the same expired Lease; the API server lets only one write win."""
    clock = Clock()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    assert a.try_acquire()
    clock.now += datetime.timedelta(seconds=leader.LEASE_SECONDS + 1)
    stale = ctx.objs.get(kinds.LEASE, "lease", namespace="csi-vm")
    assert b.try_acquire()
    stale["spec"]["holderIdentity"] = "c"
    assert not _elector(ctx, "c", clock)._write(stale, taking_over=True)
