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
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from csi_vm import errors
from csi_vm.flows import actions, context
from csi_vm.store import journal

log = logging.getLogger("csi_vm.flows")

#: test hook: "N" or "N:after" kills this process at the N-th journaled step
#: of the first flow, before (or right after) the step runs; how crash tests
#: reach every step deterministically.
CRASH_ENV = "CSI_VM_CRASH_AT"

Data = dict[str, Any]


class Flow:
    def __init__(self, env: context.Env, *, kind: str, vm: str, args: Data) -> None:
        self.env = env
        self.kind = kind
        self.vm = vm
        self.args = args
        self.id = f"{kind}-{uuid.uuid4().hex[:10]}"
        self.committed = False
        self._count = 0

    def __enter__(self) -> Flow:
        journal.begin(self.env.store, flow_id=self.id, kind=self.kind, vm=self.vm, args=self.args)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None and self.committed:
            return
        reason = str(exc) if exc is not None else "flow ended without committing"
        if self.committed:
            # Past the commit point the new state is in the store; what is
            # left is tidying up, which `resume` finishes.
            log.warning("flow %s: cleanup after commit failed: %s", self.id, reason)
            return
        log.warning("flow %s failed (%s): rolling back", self.id, reason)
        try:
            rollback(self.env, self.id)
        except errors.DataSafetyError as err:
            # Say why the flow failed first: the rollback's own failure is
            # often a consequence of it (a full disk, a driver still down).
            raise errors.DataSafetyError(f"{reason}; then {err.message}", hint=err.hint) from err
        journal.end(self.env.store, flow_id=self.id, state=journal.ROLLED_BACK, error=reason)

    def name(self, what: str) -> str:
        """A CSI object name unique to this flow and step, so re-creating it is idempotent."""
        return f"csi-vm-{self.id}-{what}"[:128]

    def run(self, action: str, data: Data) -> Data:
        """Journal the step, do it, journal its result."""
        seq = journal.add_step(self.env.store, flow_id=self.id, action=action, data=data)
        self._crash_point("before")
        result = actions.do(self.env, action, data, flow_id=self.id, seq=seq)
        merged = {**data, **result}
        journal.finish_step(self.env.store, flow_id=self.id, seq=seq, data=merged)
        self._crash_point("after")
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
        self._crash_point("before")
        roll_forward(self.env, self.id)
        journal.end(self.env.store, flow_id=self.id, state=journal.DONE)

    def _crash_point(self, when: str) -> None:
        spec = os.environ.get(CRASH_ENV)
        if not spec:
            return
        self._count += when == "before"
        number, _, at = spec.partition(":")
        if int(number) == self._count and (at or "before") == when:
            os.kill(os.getpid(), signal.SIGKILL)


def rollback(env: context.Env, flow_id: str) -> None:
    """Undo every step of a flow, newest first; a step that cannot be undone stops it."""
    for step in reversed(journal.steps(env.store, flow_id)):
        if step.action.startswith("after:"):
            continue
        try:
            actions.undo(env, step.action, step.data)
        except errors.CsiVmError as err:
            raise errors.DataSafetyError(
                f"cannot roll back step {step.seq} ({step.action}) of flow {flow_id}: {err}",
                hint="fix the cause, then run `csi-vm resume`",
            ) from err


def roll_forward(env: context.Env, flow_id: str) -> None:
    for step in journal.steps(env.store, flow_id):
        if step.action.startswith("after:") and not step.done:
            actions.do(
                env, step.action.removeprefix("after:"), step.data, flow_id=flow_id, seq=step.seq
            )
            journal.finish_step(env.store, flow_id=flow_id, seq=step.seq, data=step.data)


def resume(env: context.Env) -> list[str]:
    """Finish or roll back every flow whose process died; returns what was done."""
    done = []
    for flow in journal.interrupted(env.store):
        journal.adopt(env.store, flow.id)
        if flow.state == journal.COMMITTED:
            roll_forward(env, flow.id)
            journal.end(env.store, flow_id=flow.id, state=journal.DONE)
            done.append(f"completed {flow.kind} {flow.id} of VM {flow.vm}")
        else:
            rollback(env, flow.id)
            journal.end(env.store, flow_id=flow.id, state=journal.ROLLED_BACK, error="interrupted")
            done.append(f"rolled back {flow.kind} {flow.id} of VM {flow.vm}")
    return done
