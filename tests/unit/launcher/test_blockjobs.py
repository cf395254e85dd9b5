"""Guest-agent freeze and block-job helpers against a fake connection."""

from __future__ import annotations

from typing import Any

import pytest

from csi_vm import errors
from launcher import blockjobs

pytestmark = pytest.mark.timeout(10)


class FakeConn:
    """Answers `call` from a table; records what was asked."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def call(self, name: str, what: str, method: str, *args: Any) -> Any:
        self.calls.append(method)
        answer = self.answers.get(method)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _xml(state: str | None) -> str:
    """A live domain XML with the agent channel in `state`; None: no channel at all."""
    if state is None:
        return "<domain><devices/></domain>"
    return (
        "<domain><devices><channel type='unix'><target type='virtio' "
        f"name='org.qemu.guest_agent.0' state='{state}'/></channel></devices></domain>"
    )


@pytest.mark.parametrize("state", [None, "disconnected"], ids=["no-channel", "not-connected"])
def test_a_guest_without_a_connected_agent_is_not_asked(state: str | None) -> None:
    conn = FakeConn({"XMLDesc": _xml(state)})
    got = blockjobs.freeze(conn, "web")  # type: ignore[arg-type]
    assert not got.frozen
    assert "no guest agent is connected" in got.why
    assert conn.calls == ["XMLDesc"]


@pytest.mark.parametrize(
    ("error", "thawed"),
    [
        (errors.Unreachable("Guest agent is not responding"), True),
        (errors.OperationFailed("failed to freeze /data: Device or resource busy"), True),
        (errors.Unreachable("Guest agent is not responding"), False),
    ],
    ids=["timeout-thawed", "partial-failure-thawed", "timeout-thaw-fails-too"],
)
def test_a_failed_freeze_is_thawed_and_says_why(error: errors.CsiVmError, thawed: bool) -> None:
    """The agent may have frozen some filesystems before it failed: they are thawed."""
    thaw: Any = 1 if thawed else errors.Unreachable("Guest agent is not responding")
    conn = FakeConn({"XMLDesc": _xml("connected"), "fsFreeze": error, "fsThaw": thaw})
    got = blockjobs.freeze(conn, "web")  # type: ignore[arg-type]
    assert not got.frozen
    assert conn.calls == ["XMLDesc", "agentSetResponseTimeout", "getTime", "fsFreeze", "fsThaw"]
    assert error.message in got.why
    assert ("no filesystem is left frozen" in got.why) == thawed
    assert ("virsh domfsthaw web" in got.why) != thawed


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
    got = blockjobs.freeze(conn, "web")  # type: ignore[arg-type]
    assert not got.frozen
    assert "fsFreeze" not in conn.calls
    assert "fsThaw" not in conn.calls
    assert got.why == f"the guest agent {how} ({error.message}); it was not asked to freeze"


def test_with_an_agent_freeze_is_bounded_says_yes_and_thaw_asks_it() -> None:
    conn = FakeConn({"XMLDesc": _xml("connected"), "fsFreeze": 2, "fsThaw": 2})
    got = blockjobs.freeze(conn, "web")  # type: ignore[arg-type]
    assert got == blockjobs.Freeze(True, "2 filesystem(s) frozen by the guest agent")
    blockjobs.thaw(conn, "web")  # type: ignore[arg-type]
    assert conn.calls == ["XMLDesc", "agentSetResponseTimeout", "getTime", "fsFreeze", "fsThaw"]


def test_cancel_aborts_only_a_running_job() -> None:
    idle = FakeConn({"blockJobInfo": {}})
    blockjobs.cancel(idle, "web", target="vda")  # type: ignore[arg-type]
    assert idle.calls == ["blockJobInfo"]
    busy = FakeConn({"blockJobInfo": {"cur": 1, "end": 2}, "blockJobAbort": 0})
    blockjobs.cancel(busy, "web", target="vda")  # type: ignore[arg-type]
    assert busy.calls == ["blockJobInfo", "blockJobAbort"]
