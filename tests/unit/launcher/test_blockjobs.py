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


@pytest.mark.parametrize(
    "error",
    [
        errors.Unsupported("QEMU guest agent is not configured"),
        errors.Unreachable("agent not responding"),
    ],
    ids=["no-agent", "agent-down"],
)
def test_without_a_working_agent_freeze_says_no(error: errors.CsiVmError) -> None:
    conn = FakeConn({"fsFreeze": error})
    assert blockjobs.freeze(conn, "web") is False  # type: ignore[arg-type]


def test_with_an_agent_freeze_says_yes_and_thaw_asks_it() -> None:
    conn = FakeConn({"fsFreeze": 2, "fsThaw": 2})
    assert blockjobs.freeze(conn, "web") is True  # type: ignore[arg-type]
    blockjobs.thaw(conn, "web")  # type: ignore[arg-type]
    assert conn.calls == ["fsFreeze", "fsThaw"]


def test_cancel_aborts_only_a_running_job() -> None:
    idle = FakeConn({"blockJobInfo": {}})
    blockjobs.cancel(idle, "web", target="vda")  # type: ignore[arg-type]
    assert idle.calls == ["blockJobInfo"]
    busy = FakeConn({"blockJobInfo": {"cur": 1, "end": 2}, "blockJobAbort": 0})
    blockjobs.cancel(busy, "web", target="vda")  # type: ignore[arg-type]
    assert busy.calls == ["blockJobInfo", "blockJobAbort"]
