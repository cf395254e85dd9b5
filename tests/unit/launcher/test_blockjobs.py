"""Guest-agent freeze and block-job helpers against a fake connection (tests/support/fakeagent)."""

from __future__ import annotations

import pytest

from csi_vm import errors
from launcher import blockjobs
from tests.support import fakeagent
from tests.support.fakeagent import FakeConn

pytestmark = pytest.mark.timeout(10)


AGENT_LATE = errors.Unreachable("Guest agent is not responding: Guest agent not available for now")


def _xml(state: str | None) -> str:
    return fakeagent.agent_xml(state)


def _freeze(conn: FakeConn) -> blockjobs.Freeze:
    return blockjobs.freeze(conn, "web", clock=conn.clock, sleep=conn.sleep)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", [None, "disconnected"], ids=["no-channel", "not-connected"])
def test_a_guest_without_a_connected_agent_is_not_asked(state: str | None) -> None:
    conn = FakeConn({"XMLDesc": _xml(state)})
    got = _freeze(conn)
    assert got.state == blockjobs.NOT_FROZEN
    assert "no guest agent is connected" in got.why
    assert conn.calls == ["XMLDesc"]


@pytest.mark.parametrize(
    "error",
    [AGENT_LATE, errors.OperationFailed("failed to freeze /data: Device or resource busy")],
    ids=["timeout", "partial-failure"],
)
def test_a_failed_freeze_is_thawed_and_says_why(error: errors.CsiVmError) -> None:
    """The agent may have frozen some filesystems before it failed: they are thawed."""
    conn = FakeConn({"XMLDesc": _xml("connected"), "fsFreeze": error, "fsThaw": 1})
    got = _freeze(conn)
    assert got.state == blockjobs.NOT_FROZEN
    assert not got.frozen
    assert conn.calls == ["XMLDesc", "agentSetResponseTimeout", "getTime", "fsFreeze", "fsThaw"]
    assert error.message in got.why
    assert "a thaw that followed answered: no filesystem is left frozen" in got.why


def test_a_freeze_that_timed_out_is_thawed_once_the_agent_answers_a_thaw() -> None:
    """The agent still busy with a late freeze answers a later thaw: each thaw
    waits for its answer, one after the other, with no pause between them."""
    thaws = [AGENT_LATE, AGENT_LATE, 1]
    conn = FakeConn(
        {"XMLDesc": _xml("connected"), "fsFreeze": AGENT_LATE, "fsThaw": thaws},
        timed_out=(errors.Unreachable,),
    )
    got = _freeze(conn)
    assert got.state == blockjobs.NOT_FROZEN, got.why
    assert conn.calls.count("fsThaw") == 3
    assert conn.slept == []
    assert conn.now == 3 * blockjobs.AGENT_TIMEOUT_S  # the freeze and two thaws waited out
    assert "no filesystem is left frozen" in got.why


def test_a_freeze_that_timed_out_with_no_thaw_answering_is_unknown_after_the_bound() -> None:
    conn = FakeConn(
        {"XMLDesc": _xml("connected"), "fsFreeze": AGENT_LATE, "fsThaw": AGENT_LATE},
        timed_out=(errors.Unreachable,),
    )
    got = _freeze(conn)
    assert got.state == blockjobs.UNKNOWN
    assert not got.frozen
    assert got.why.endswith("the guest may still be frozen"), got.why
    assert f"no thaw answered within {blockjobs.SETTLE_S:.0f} s" in got.why
    began = blockjobs.AGENT_TIMEOUT_S  # the settle starts once the freeze timed out
    # thaws until the bound, the last one started before it
    assert began + blockjobs.SETTLE_S <= conn.now
    assert conn.now < began + blockjobs.SETTLE_S + blockjobs.AGENT_TIMEOUT_S
    assert conn.calls.count("fsThaw") == blockjobs.SETTLE_S // blockjobs.AGENT_TIMEOUT_S


def test_thaws_that_fail_at_once_are_paced_and_bounded() -> None:
    """An agent channel that closed fails every thaw at once: asked again a
    second later, not in a busy loop, and given up after the bound."""
    gone = errors.Unreachable("Guest agent is not responding: QEMU guest agent is not connected")
    conn = FakeConn({"XMLDesc": _xml("connected"), "fsFreeze": AGENT_LATE, "fsThaw": gone})
    got = _freeze(conn)
    assert got.state == blockjobs.UNKNOWN
    assert conn.now == blockjobs.SETTLE_S
    assert conn.calls.count("fsThaw") == blockjobs.SETTLE_S + 1
    assert set(conn.slept) == {1.0}


@pytest.mark.parametrize(
    ("error", "how"),
    [
        (errors.Unreachable("Guest agent is not responding"), "did not answer within 10 s"),
        (errors.Unsupported("agent response timeout not supported"), "failed"),
    ],
    ids=["not-answering", "no-bound"],
)
def test_an_agent_that_does_not_answer_first_is_never_asked_to_freeze(
    error: errors.CsiVmError, how: str
) -> None:
    """A freeze it ran once it woke would have no thaw after it."""
    method = "getTime" if isinstance(error, errors.Unreachable) else "agentSetResponseTimeout"
    conn = FakeConn({"XMLDesc": _xml("connected"), method: error})
    got = _freeze(conn)
    assert got.state == blockjobs.NOT_FROZEN
    assert "fsFreeze" not in conn.calls
    assert "fsThaw" not in conn.calls
    assert got.why == f"the guest agent {how} ({error.message}); it was not asked to freeze"


def test_with_an_agent_freeze_is_bounded_says_yes_and_thaw_asks_it() -> None:
    conn = FakeConn({"XMLDesc": _xml("connected"), "fsFreeze": 2, "fsThaw": 2})
    got = _freeze(conn)
    assert got == blockjobs.Freeze(blockjobs.FROZEN, "2 filesystem(s) frozen by the guest agent")
    blockjobs.thaw(conn, "web")  # type: ignore[arg-type]
    assert conn.calls == ["XMLDesc", "agentSetResponseTimeout", "getTime", "fsFreeze", "fsThaw"]


def test_cancel_aborts_only_a_running_job() -> None:
    idle = FakeConn({"blockJobInfo": {}})
    blockjobs.cancel(idle, "web", target="vda")  # type: ignore[arg-type]
    assert idle.calls == ["blockJobInfo"]
    busy = FakeConn({"blockJobInfo": {"cur": 1, "end": 2}, "blockJobAbort": 0})
    blockjobs.cancel(busy, "web", target="vda")  # type: ignore[arg-type]
    assert busy.calls == ["blockJobInfo", "blockJobAbort"]
