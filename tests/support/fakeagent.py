"""A fake libvirt connection to a guest with an agent, for the freeze logic's unit tests.

Pure logic only: the real agent is tested in tests/integration/running/
test_guest_agent.py. The fake answers `call` from a table and keeps a clock
of its own: an agent command that times out moves it on by the agent's
time-out, as libvirt waiting for the answer would, and `sleep` moves it too,
so a bound of a minute is checked without waiting for it.
"""

from __future__ import annotations

from typing import Any

from launcher import blockjobs


def agent_xml(state: str | None) -> str:
    """A live domain XML with the agent channel in `state`; None: no channel at all."""
    if state is None:
        return "<domain><devices/></domain>"
    return (
        "<domain><devices><channel type='unix'><target type='virtio' "
        f"name='org.qemu.guest_agent.0' state='{state}'/></channel></devices></domain>"
    )


class FakeConn:
    """Answers `call` from a table; records what was asked.

    An answer may be a list: one item per call, the last one repeated. An
    exception is raised; a `timed_out` one first moves the clock on.
    """

    def __init__(self, answers: dict[str, Any], *, timed_out: tuple[type, ...] = ()) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.now = 0.0
        self.slept: list[float] = []
        self._timed_out = timed_out

    def call(self, name: str, what: str, method: str, *args: Any) -> Any:
        self.calls.append(method)
        answer = self.answers.get(method)
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, BaseException):
            if isinstance(answer, self._timed_out):
                self.now += blockjobs.AGENT_TIMEOUT_S
            raise answer
        return answer

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
