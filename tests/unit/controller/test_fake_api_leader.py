"""Leader election through a Lease, against the fake API server (a fake, not a cluster).

Each replica gets its own clocks: a wall clock that may be hours off (it only
writes the Lease's times) and a monotonic clock, which all judgements use.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time

import pytest

from csi_vm import errors
from csi_vm.controller import context, leader
from csi_vm.controller import run as controller_run
from csi_vm.crd import kinds
from tests.support import fakekube

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

T0 = datetime.datetime(2026, 11, 28, 10, 0, tzinfo=datetime.UTC)
HOURS = datetime.timedelta(hours=5)


@dataclasses.dataclass
class Time:
    """The time that really passes, in seconds since the test began."""

    now: float = 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _elector(
    ctx: context.Context,
    identity: str,
    clock: Time,
    *,
    skew: datetime.timedelta = datetime.timedelta(0),
    booted: float = 0.0,
) -> leader.Elector:
    """A replica: its wall clock is off by ``skew``, its monotonic clock began at ``booted``."""
    return leader.Elector(
        objs=ctx.objs,
        namespace="csi-vm",
        name="lease",
        identity=identity,
        clock=lambda: T0 + datetime.timedelta(seconds=clock.now) + skew,
        monotonic=lambda: booted + clock.now,
    )


def _lease(ctx: context.Context) -> dict:  # type: ignore[type-arg]
    return ctx.objs.get(kinds.LEASE, "lease", namespace="csi-vm")["spec"]


def test_one_replica_leads_and_renews(ctx: context.Context) -> None:
    clock = Time()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    assert a.try_acquire()
    assert not b.try_acquire()
    clock.advance(10)
    assert a.try_acquire()  # renewal
    clock.advance(10)
    assert not b.try_acquire()  # renewed 10 s ago, as b saw the Lease change
    assert (_lease(ctx)["holderIdentity"], _lease(ctx)["leaseTransitions"]) == ("a", 0)


def test_an_unrenewed_lease_is_taken_after_its_duration_on_the_candidates_clock(
    ctx: context.Context,
) -> None:
    clock = Time()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock, booted=5000.0)
    assert a.try_acquire()
    assert not b.try_acquire()  # b sees the Lease now
    clock.advance(leader.LEASE_SECONDS - 1)  # a is gone: it renews no more
    assert not b.try_acquire()
    clock.advance(1)
    assert b.try_acquire()
    assert not a.try_acquire()  # the old leader sees it lost
    assert (_lease(ctx)["holderIdentity"], _lease(ctx)["leaseTransitions"]) == ("b", 1)


@pytest.mark.parametrize(
    ("holder_skew", "candidate_skew"),
    [
        (-HOURS, datetime.timedelta(0)),
        (HOURS, datetime.timedelta(0)),
        (datetime.timedelta(0), HOURS),
    ],
    ids=["holder-behind", "holder-ahead", "candidate-ahead"],
)
def test_clock_skew_neither_steals_nor_keeps_the_lease(
    ctx: context.Context, holder_skew: datetime.timedelta, candidate_skew: datetime.timedelta
) -> None:
    clock = Time()
    a = _elector(ctx, "a", clock, skew=holder_skew)
    b = _elector(ctx, "b", clock, skew=candidate_skew, booted=123.0)
    assert a.try_acquire()
    for _ in range(30):  # a minute of renewals every 2 s: b never steals
        assert not b.try_acquire()
        clock.advance(leader.RENEW_SECONDS)
        assert a.try_acquire()
    last_renewal = clock.now
    while not b.try_acquire():  # a stops: b takes over after one lease on its own clock
        clock.advance(1)
    assert clock.now - last_renewal == leader.LEASE_SECONDS


def test_a_new_candidate_waits_a_whole_lease_whatever_the_renew_time_says(
    ctx: context.Context,
) -> None:
    """A renewTime hours old may come from a clock hours behind: only watching tells."""
    clock = Time()
    dead = _elector(ctx, "dead", clock, skew=-HOURS)
    assert dead.try_acquire()
    late = _elector(ctx, "late", clock)
    assert not late.try_acquire()
    clock.advance(leader.LEASE_SECONDS)
    assert late.try_acquire()


def test_a_released_lease_is_taken_at_once(ctx: context.Context) -> None:
    clock = Time()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert not _lease(ctx).get("holderIdentity")
    assert b.try_acquire()  # no clock has passed
    assert (_lease(ctx)["holderIdentity"], _lease(ctx)["leaseTransitions"]) == ("b", 1)


def test_a_stale_write_loses_the_race(ctx: context.Context) -> None:
    """Two replicas read the same free Lease; the API server lets only one write win."""
    clock = Time()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    assert a.try_acquire()
    a.release()
    stale = ctx.objs.get(kinds.LEASE, "lease", namespace="csi-vm")
    assert b.try_acquire()
    with pytest.raises(errors.Busy):
        _elector(ctx, "c", clock)._write(stale, taking_over=True, now=clock.now)


def test_a_leader_that_cannot_renew_stops_before_anyone_may_take_over(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    clock = Time()
    a = _elector(ctx, "a", clock)
    assert a.try_acquire()
    fake.fail_next(503, times=1000, plural="leases")
    clock.advance(leader.RENEW_DEADLINE - 1)
    assert a.try_acquire()  # no answer, but the last renewal is recent: still leading
    clock.advance(1)
    assert not a.try_acquire()
    assert leader.RENEW_DEADLINE < leader.LEASE_SECONDS  # so nobody took over before


def test_a_stopped_leader_hands_the_lease_over_at_once(ctx: context.Context) -> None:
    """What SIGTERM does to `csi-vm controller run` (the stop event), in process."""
    clock = Time()
    a, b = _elector(ctx, "a", clock), _elector(ctx, "b", clock)
    stop = threading.Event()
    loop = threading.Thread(
        target=controller_run.run, args=(controller_run.Controller(ctx=ctx, resync=1), a, stop)
    )
    loop.start()
    try:
        until = time.monotonic() + 10
        while _holder(ctx) != "a" and time.monotonic() < until:
            time.sleep(0.05)
        assert not b.try_acquire()
    finally:
        stop.set()
        loop.join(timeout=controller_run.QUIESCE_SECONDS + 5)
    assert not loop.is_alive()
    assert b.try_acquire()  # no clock has passed on b's clock


def _holder(ctx: context.Context) -> str:
    try:
        return str(_lease(ctx).get("holderIdentity") or "")
    except errors.NotFound:
        return ""
