"""Journaled flows: every step is written down before it is done.

    with engine.Flow(env, kind="snapshot", vm="web-1", args={...}) as flow:
        vol = flow.run("create_volume", {...}, do=...)
        ...
        flow.commit(lambda cur: records..., after=[("retire_volume", {...})])

Leaving the block with an exception rolls back every step, newest first,
including steps whose intent was written but whose answer never came. After
`commit`, the remaining `after` steps are rolled forward: they only remove
what is no longer needed. `resume` applies the same two rules to flows whose
process died.

A step that cannot be undone or finished because its driver does not answer
leaves the flow pending (`Pending`, exit code 4): the journal keeps it, with
one line saying why, and only `csi-vm resume` tries it again. Any other
failure to undo a step stops everything (`errors.DataSafetyError`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from csi_vm import errors
from csi_vm.store import journal

if TYPE_CHECKING:
    from csi_vm.flows import context

# journal_actions (and through it every flow's actions, the copy engine and
# the launcher) is imported where a step runs: a command that only lists
# unfinished flows (`vm list`) needs the journal alone.

log = logging.getLogger("csi_vm.flows")

#: Called as hook(flow_id, when) at every step boundary of every flow: "before"
#: a journaled step runs (and before the roll-forward after a commit), "after"
#: its answer is journaled. None are installed here: crash tests add one that
#: kills the process at a chosen boundary (tests/support/crash.py).
boundary_hooks: list[Callable[[str, str], None]] = []

#: kinds of flow that `settle` leaves to the user when interrupted: a fan-out
#: keeps the clones it made until `csi-vm resume` finishes it, or rolls it
#: back with --rollback (csi_vm.flows.fanout)
HELD = frozenset({"fanout"})

Data = dict[str, Any]


class Pending(errors.Unreachable):
    """A step of a rollback or roll-forward could not reach its driver; the
    flow is left in the journal for `csi-vm resume`."""

    def __init__(self, message: str, *, hint: str, reach: str) -> None:
        super().__init__(message, hint=hint)
        #: what did not answer, e.g. "driver 'local'"
        self.reach = reach


@dataclasses.dataclass
class Resumed:
    """What a resume did: lines for the user, and the first failure if any."""

    done: list[str] = dataclasses.field(default_factory=list)
    pending: list[str] = dataclasses.field(default_factory=list)
    failed: Pending | None = None
    #: interrupted flows of a `HELD` kind, left for the caller to decide on
    held: list[journal.FlowRow] = dataclasses.field(default_factory=list)


class Flow:
    def __init__(self, env: context.Env, *, kind: str, vm: str, args: Data) -> None:
        self.env = env
        self.kind = kind
        self.vm = vm
        self.args = args
        self.id = f"{kind}-{uuid.uuid4().hex[:10]}"
        self.committed = False
        self.held = False

    def __enter__(self) -> Flow:
        journal.begin(self.env.store, flow_id=self.id, kind=self.kind, vm=self.vm, args=self.args)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None and (self.committed or self.held):
            return
        reason = str(exc) if exc is not None else "flow ended without committing"
        if self.committed:
            # Past the commit point the new state is in the store; what is
            # left is tidying up, which `resume` finishes.
            log.warning("flow %s: cleanup after commit failed: %s", self.id, reason)
            return
        # The error the command ends with says it; -v shows the progress.
        log.info("flow %s failed (%s): rolling back", self.id, reason)
        try:
            rollback(self.env, self.id)
        except Pending as err:
            raise _pending_after(exc, err, flow_id=self.id) from exc
        except errors.DataSafetyError as err:
            # Say why the flow failed first: the rollback's own failure is
            # often a consequence of it (a full disk, a driver still down).
            raise errors.DataSafetyError(f"{reason}; then {err.message}", hint=err.hint) from err
        journal.end(self.env.store, flow_id=self.id, state=journal.ROLLED_BACK, error=reason)

    def hold(self) -> None:
        """Leave the block without ending the flow: it stays unfinished, for
        `csi-vm resume` to finish or roll back as the user chooses (`HELD`)."""
        self.held = True

    def name(self, what: str) -> str:
        """A CSI object name unique to this flow and step, so re-creating it is idempotent."""
        return f"csi-vm-{self.id}-{what}"[:128]

    def run(self, action: str, data: Data) -> Data:
        """Journal the step, do it, journal its result."""
        seq = journal.add_step(self.env.store, flow_id=self.id, action=action, data=data)
        self._boundary("before")
        from csi_vm.flows import journal_actions  # noqa: PLC0415 - see the imports

        result = journal_actions.do(self.env, action, data, flow_id=self.id, seq=seq)
        merged = {**data, **result}
        journal.finish_step(self.env.store, flow_id=self.id, seq=seq, data=merged)
        self._boundary("after")
        return merged

    def commit(
        self,
        apply: Callable[[sqlite3.Cursor], None],
        *,
        after: list[tuple[str, Data]] | None = None,
    ) -> None:
        """Atomically apply the record changes and schedule the tidy-up steps."""
        with self.env.store.transaction() as cur:
            apply(cur)
            journal.mark_committed(cur, flow_id=self.id)
            for action, data in after or []:
                seq = cur.execute(
                    "SELECT COALESCE(MAX(seq), 0) + 1 FROM flow_steps WHERE flow = ?", (self.id,)
                ).fetchone()[0]
                cur.execute(
                    "INSERT INTO flow_steps (flow, seq, action, data) VALUES (?, ?, ?, ?)",
                    (self.id, seq, f"after:{action}", json.dumps(data)),
                )
        self.committed = True
        self._boundary("before")
        roll_forward(self.env, self.id)
        journal.end(self.env.store, flow_id=self.id, state=journal.DONE)

    def _boundary(self, when: str) -> None:
        for hook in boundary_hooks:
            hook(self.id, when)


def _pending_after(exc: BaseException | None, err: Pending, *, flow_id: str) -> Pending:
    """The error of a flow that failed and could not be rolled back for now."""
    if isinstance(exc, errors.Transient):
        # The same outage most likely stopped both: say its text once.
        hint = (
            f"flow {flow_id} is left pending: its rollback could not reach {err.reach} "
            "either; run `csi-vm resume` once it answers"
        )
        return Pending(exc.message, hint=_join(exc.hint, hint), reach=err.reach)
    reason = str(exc) if exc is not None else "flow ended without committing"
    return Pending(f"{reason}; then {err.message}", hint=err.hint or "", reach=err.reach)


def _join(*hints: str | None) -> str:
    return "; ".join(h for h in hints if h)


def rollback(env: context.Env, flow_id: str) -> None:
    """Undo every step of a flow, newest first; a step that cannot be undone stops it."""
    from csi_vm.flows import journal_actions  # noqa: PLC0415 - see the imports

    for step in reversed(journal.steps(env.store, flow_id)):
        if step.action.startswith("after:"):
            continue
        try:
            journal_actions.undo(env, step.action, step.data)
        except errors.Transient as err:
            raise _left_pending(env, flow_id, step, err, what="rollback") from err
        except errors.CsiVmError as err:
            raise errors.DataSafetyError(
                f"cannot roll back step {step.seq} ({step.action}) of flow {flow_id}: {err}",
                hint="fix the cause, then run `csi-vm resume`",
            ) from err


def roll_forward(env: context.Env, flow_id: str) -> None:
    from csi_vm.flows import journal_actions  # noqa: PLC0415 - see the imports

    for step in journal.steps(env.store, flow_id):
        if step.action.startswith("after:") and not step.done:
            try:
                journal_actions.do(
                    env, step.action.removeprefix("after:"), step.data, flow_id=flow_id,
                    seq=step.seq,
                )  # fmt: skip
            except errors.Transient as err:
                raise _left_pending(env, flow_id, step, err, what="finishing") from err
            journal.finish_step(env.store, flow_id=flow_id, seq=step.seq, data=step.data)


def _left_pending(
    env: context.Env, flow_id: str, step: journal.Step, err: errors.CsiVmError, *, what: str
) -> Pending:
    """Record in the journal that the flow waits for `csi-vm resume`, and say so."""
    driver = step.data.get("driver")
    reach = f"driver {driver!r}" if driver else "the service it needs"
    if isinstance(err, Pending):
        reach = err.reach  # the step named what did not answer itself
    why = f"its {what} could not reach {reach} (step {step.seq}, {step.action})"
    journal.mark_pending(env.store, flow_id=flow_id, error=why)
    return Pending(
        f"{what} of flow {flow_id} is pending: step {step.seq} ({step.action}) "
        f"could not reach {reach}: {err.message}",
        hint=f"run `csi-vm resume` once {reach} answers",
        reach=reach,
    )


def resume(env: context.Env) -> list[str]:
    """Finish or roll back every flow whose process died, pending ones too;
    returns what was done, raises the first failure after trying them all."""
    got = settle(env, retry_pending=True)
    if got.failed is not None:
        raise got.failed
    return got.done


def settle(env: context.Env, *, retry_pending: bool) -> Resumed:
    """Finish or roll back the flows whose process died.

    A flow whose driver does not answer is left pending, not an error of the
    caller; without `retry_pending` a flow already pending is only listed, so
    an outage costs one wait, not one per command.
    """
    got = Resumed()
    for flow in journal.interrupted(env.store):
        if flow.kind in HELD and flow.state == journal.RUNNING:
            # After the others: a fan-out's clones in flight are rolled back first.
            got.held.append(flow)
            got.pending.append(pending_line(flow))
            continue
        if flow.pending and not retry_pending:
            got.pending.append(pending_line(flow))
            continue
        try:
            got.done.append(_resume_one(env, flow))
        except Pending as err:
            got.pending.append(f"{err.message} ({err.hint})")
            got.failed = got.failed or err
    return got


def _resume_one(env: context.Env, flow: journal.FlowRow) -> str:
    journal.adopt(env.store, flow.id)
    if flow.state == journal.COMMITTED:
        roll_forward(env, flow.id)
        journal.end(env.store, flow_id=flow.id, state=journal.DONE)
        return f"completed {flow.kind} {flow.id} of VM {flow.vm}"
    rollback(env, flow.id)
    journal.end(env.store, flow_id=flow.id, state=journal.ROLLED_BACK, error="interrupted")
    return f"rolled back {flow.kind} {flow.id} of VM {flow.vm}"


def waiting(env: context.Env) -> list[str]:
    """One line per flow that waits for `csi-vm resume`; changes nothing."""
    return [pending_line(flow) for flow in journal.interrupted(env.store)]


def pending_line(flow: journal.FlowRow) -> str:
    why = flow.error if flow.pending else "its process ended before it did"
    if flow.kind in HELD and flow.state == journal.RUNNING:
        return (
            f"{flow.kind} flow {flow.id} of VM {flow.vm!r} is unfinished: {why}; run "
            "`csi-vm resume` to finish it, or `csi-vm resume --rollback` to roll it back"
        )
    return (
        f"{flow.kind} flow {flow.id} of VM {flow.vm!r} is unfinished: {why}; "
        "run `csi-vm resume` to finish or roll it back"
    )
