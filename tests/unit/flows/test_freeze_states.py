"""The freeze step of an online snapshot, its journal and its undo, against a fake agent.

The flows, the journal and the SQLite store are real; only the libvirt
connection is the fake of tests/support/fakeagent (its clock too: the settle
bound is a minute). The real agent: tests/integration/running/test_guest_agent.py.
"""

from __future__ import annotations

import contextlib
import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from csi_vm import config, errors
from csi_vm.flows import context, engine, online, vm_actions
from csi_vm.store import db, journal
from launcher import blockjobs
from tests.support import fakeagent
from tests.support.fakeagent import FakeConn

pytestmark = pytest.mark.timeout(30)

LATE = errors.Unreachable("Guest agent is not responding: Guest agent not available for now")
GUEST = {"vm": "web", "node": "node-a"}


@pytest.fixture
def env(tmp_path: pathlib.Path) -> context.Env:
    return context.Env(
        cfg=config.Config(), store=db.Store(tmp_path / "csi-vm.db"), state_dir=tmp_path
    )


def _agent(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> FakeConn:
    """Every libvirt connection the flow's actions open is this fake, on its clock."""
    conn = FakeConn(
        {"XMLDesc": fakeagent.agent_xml("connected"), **answers}, timed_out=(errors.Unreachable,)
    )

    @contextlib.contextmanager
    def opened(env: context.Env, node_name: str, *, wait_s: float = 0.0) -> Iterator[FakeConn]:
        yield conn

    monkeypatch.setattr(vm_actions, "_conn", opened)
    real = blockjobs.freeze
    monkeypatch.setattr(
        blockjobs, "freeze", functools.partial(real, clock=conn.clock, sleep=conn.sleep)
    )
    return conn


def _snapshot_flow(env: context.Env, *, fail: bool = False) -> dict[str, Any]:
    """An online snapshot's first steps: the freeze, what it says, and a later failure."""
    with engine.Flow(env, kind="online-snapshot", vm="web", args={}) as flow:
        froze = flow.run("freeze", dict(GUEST))
        online._refuse_unknown_freeze("web", froze)
        if fail:
            raise errors.OperationFailed("CreateSnapshot failed")
        flow.commit(lambda cur: None)
    return froze


def _freeze_step(env: context.Env) -> dict[str, Any]:
    (flow,) = journal.recent(env.store, limit=1)
    (step,) = journal.steps(env.store, flow.id)
    assert step.action == "freeze"
    return step.data


def test_a_freeze_that_timed_out_then_a_thaw_answered_goes_on_crash_consistent(
    env: context.Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _agent(monkeypatch, {"fsFreeze": LATE, "fsThaw": [LATE, 1]})
    froze = _snapshot_flow(env)
    assert froze["state"] == blockjobs.NOT_FROZEN
    assert froze["frozen"] is False  # the snapshot is reported crash-consistent
    assert agent.calls.count("fsThaw") == 2


def test_a_rollback_after_a_confirmed_thaw_asks_no_thaw_again(
    env: context.Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _agent(monkeypatch, {"fsFreeze": LATE, "fsThaw": 1})
    with pytest.raises(errors.OperationFailed):
        _snapshot_flow(env, fail=True)
    assert agent.calls.count("fsThaw") == 1  # the settle's thaw; none from the undo


def test_no_thaw_answering_leaves_the_flow_pending_and_resume_thaws(
    env: context.Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = _agent(monkeypatch, {"fsFreeze": LATE, "fsThaw": LATE})
    with pytest.raises(engine.Pending) as caught:
        _snapshot_flow(env)
    err = caught.value
    assert "no snapshot taken" in err.message
    assert err.message.endswith("the guest may still be frozen"), err.message
    assert "`csi-vm resume` thaws it once its agent answers" in str(err.hint)
    assert _freeze_step(env)["state"] == blockjobs.UNKNOWN
    (flow,) = journal.recent(env.store, limit=1)
    assert flow.pending
    assert "the guest agent of web (the guest may still be frozen)" in flow.error
    thaws = agent.calls.count("fsThaw")

    agent.answers["fsThaw"] = 1  # the agent answers again
    monkeypatch.setattr(journal.PROC, "alive", lambda recorded: False)  # the command ended
    assert engine.resume(env) == [f"rolled back online-snapshot {flow.id} of VM web"]
    assert agent.calls.count("fsThaw") == thaws + 1
    assert journal.interrupted(env.store) == []


def test_a_rollback_whose_thaw_answers_says_the_guest_is_thawed(
    env: context.Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one more thaw than the bound allows goes unanswered, then the rollback's answers
    unanswered = int(blockjobs.SETTLE_S // blockjobs.AGENT_TIMEOUT_S)
    _agent(monkeypatch, {"fsFreeze": LATE, "fsThaw": [LATE] * unanswered + [1]})
    monkeypatch.setattr(online, "_snapshot", lambda env, **_: _snapshot_flow(env))
    with pytest.raises(errors.Unreachable) as caught:
        online.snapshot(env, vm_name="web", name=None)
    assert not isinstance(caught.value, engine.Pending)
    assert caught.value.message.endswith(
        "the rollback's thaw answered after that: the guest is thawed"
    )
    assert journal.interrupted(env.store) == []


@pytest.mark.parametrize(
    ("answer", "thawed"),
    [
        ({"frozen": True, "state": blockjobs.FROZEN}, True),
        ({"frozen": False, "state": blockjobs.UNKNOWN}, True),
        ({}, True),  # killed before the agent answered the freeze
        ({"frozen": False, "state": blockjobs.NOT_FROZEN}, False),
        ({"frozen": False}, False),  # journaled before freeze states were recorded
    ],
    ids=["frozen", "unknown", "no-answer", "confirmed-not-frozen", "older-journal"],
)
def test_resume_thaws_unless_the_agent_confirmed_nothing_is_frozen(
    env: context.Env, monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any], thawed: bool
) -> None:
    agent = _agent(monkeypatch, {"fsThaw": 1})
    vm_actions._undo_freeze(env, {**GUEST, **answer})
    assert ("fsThaw" in agent.calls) == thawed
