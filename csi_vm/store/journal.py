"""The flow journal and VM locks.

A flow writes each step as an intent row *before* doing it and marks it done
after. A flow is `running` until its commit transaction flips it to
`committed` together with the VM records, then `done`. A `running` flow whose
process is gone is rolled back; a `committed` one is rolled forward. When
that cannot be done (its driver does not answer), the flow keeps its state
and records why in `error`: it is pending, and only `csi-vm resume` retries it.

Flows and locks record their owner as PID, process start time and boot id
(`csi_vm.store.owner`): a flow whose owner is gone, rebooted away or
replaced by another process under the same PID, counts as interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from typing import Any

from csi_vm import errors
from csi_vm.store import db, owner

RUNNING, COMMITTED, DONE, ROLLED_BACK = "running", "committed", "done", "rolled-back"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Step:
    seq: int
    action: str
    data: dict[str, Any]
    done: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlowRow:
    id: str
    kind: str
    vm: str
    args: dict[str, Any]
    state: str
    pid: int
    error: str

    @property
    def pending(self) -> bool:
        """Unfinished, and a resume of it already failed: only `csi-vm resume` retries it."""
        return self.state in (RUNNING, COMMITTED) and bool(self.error)


#: the process table and boot id owners are judged by; tests give it another boot id
PROC = owner.Proc()


class _Stale(errors.Busy):
    """The VM's lock belongs to a flow whose process died."""


#: how long a flow waits for another flow on the same VM before giving up
LOCK_WAIT = 600.0


def begin(
    store: db.Store,
    *,
    flow_id: str,
    kind: str,
    vm: str,
    args: dict[str, Any],
    wait: float = LOCK_WAIT,
) -> None:
    """Record a new flow and take its VM's lock, waiting for a running flow on
    that VM to end; `errors.Busy` after `wait` seconds."""
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            _begin_once(store, flow_id=flow_id, kind=kind, vm=vm, args=args)
            return
        except _Stale:
            raise  # its process is gone: waiting will not help
        except errors.Busy:
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _begin_once(store: db.Store, *, flow_id: str, kind: str, vm: str, args: dict[str, Any]) -> None:
    now = time.time()
    me = PROC.me()
    with store.transaction() as cur:
        _take_lock(cur, vm=vm, flow_id=flow_id, me=me)
        cur.execute(
            "INSERT INTO flows (id, kind, vm, args, state, pid, pid_start, boot_id, started,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (flow_id, kind, vm, json.dumps(args), RUNNING, me.pid, me.start, me.boot, now, now),
        )


def _take_lock(cur: sqlite3.Cursor, *, vm: str, flow_id: str, me: owner.Owner) -> None:
    row = cur.execute(
        "SELECT l.flow, l.pid, l.pid_start, l.boot_id, f.kind, f.error FROM vm_locks l"
        " LEFT JOIN flows f ON f.id = l.flow WHERE l.vm = ?",
        (vm,),
    ).fetchone()
    # A pending flow may be held by this very process (it tried to resume
    # it): waiting for it would never end.
    if row is not None and (row["error"] or not _alive(row)):
        why = f": {row['error']}" if row["error"] else ""
        raise _Stale(
            f"VM {vm!r} has an interrupted {row['kind'] or 'flow'} {row['flow']}{why}",
            hint="run `csi-vm resume` to finish or roll it back",
        )
    if row is not None:
        raise errors.Busy(
            f"VM {vm!r} is busy: {row['kind'] or 'a flow'} {row['flow']} (process {row['pid']})",
            hint="wait for it to end",
        )
    cur.execute(
        "INSERT INTO vm_locks (vm, flow, pid, pid_start, boot_id) VALUES (?, ?, ?, ?, ?)",
        (vm, flow_id, me.pid, me.start, me.boot),
    )


def add_step(store: db.Store, *, flow_id: str, action: str, data: dict[str, Any]) -> int:
    with store.transaction() as cur:
        row = cur.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM flow_steps WHERE flow = ?", (flow_id,)
        ).fetchone()
        seq = int(row[0])
        cur.execute(
            "INSERT INTO flow_steps (flow, seq, action, data) VALUES (?, ?, ?, ?)",
            (flow_id, seq, action, json.dumps(data)),
        )
    return seq


def finish_step(store: db.Store, *, flow_id: str, seq: int, data: dict[str, Any]) -> None:
    with store.transaction() as cur:
        cur.execute(
            "UPDATE flow_steps SET done = 1, data = ? WHERE flow = ? AND seq = ?",
            (json.dumps(data), flow_id, seq),
        )


def mark_pending(store: db.Store, *, flow_id: str, error: str) -> None:
    """Record why finishing or rolling back a flow failed; it stays unfinished."""
    with store.transaction() as cur:
        cur.execute(
            "UPDATE flows SET updated = ?, error = ? WHERE id = ?",
            (time.time(), error[:1000], flow_id),
        )


def mark_committed(cur: sqlite3.Cursor, *, flow_id: str) -> None:
    """Called inside the flow's commit transaction, with the record changes."""
    cur.execute(
        "UPDATE flows SET state = ?, updated = ? WHERE id = ?", (COMMITTED, time.time(), flow_id)
    )


def end(store: db.Store, *, flow_id: str, state: str, error: str = "") -> None:
    """Close a flow and release its VM lock; its steps are no longer needed."""
    with store.transaction() as cur:
        cur.execute(
            "UPDATE flows SET state = ?, updated = ?, error = ? WHERE id = ?",
            (state, time.time(), error[:1000], flow_id),
        )
        cur.execute("DELETE FROM flow_steps WHERE flow = ?", (flow_id,))
        cur.execute("DELETE FROM vm_locks WHERE flow = ?", (flow_id,))


def steps(store: db.Store, flow_id: str) -> list[Step]:
    rows = (
        store.connection()
        .execute("SELECT * FROM flow_steps WHERE flow = ? ORDER BY seq", (flow_id,))
        .fetchall()
    )
    return [
        Step(seq=r["seq"], action=r["action"], data=json.loads(r["data"]), done=bool(r["done"]))
        for r in rows
    ]


def interrupted(store: db.Store) -> list[FlowRow]:
    """Unfinished flows whose process is gone."""
    rows = (
        store.connection()
        .execute("SELECT * FROM flows WHERE state IN (?, ?) ORDER BY started", (RUNNING, COMMITTED))
        .fetchall()
    )
    return [_flow(r) for r in rows if not _alive(r)]


def recent(store: db.Store, *, limit: int = 50) -> list[FlowRow]:
    rows = (
        store.connection()
        .execute("SELECT * FROM flows ORDER BY updated DESC LIMIT ?", (limit,))
        .fetchall()
    )
    return [_flow(r) for r in rows]


def adopt(store: db.Store, flow_id: str) -> None:
    """Take over an interrupted flow (and its VM lock) for this process."""
    me = PROC.me()
    owned = (me.pid, me.start, me.boot, flow_id)
    with store.transaction() as cur:
        cur.execute("UPDATE flows SET pid = ?, pid_start = ?, boot_id = ? WHERE id = ?", owned)
        cur.execute("UPDATE vm_locks SET pid = ?, pid_start = ?, boot_id = ? WHERE flow = ?", owned)


def _flow(row: sqlite3.Row) -> FlowRow:
    return FlowRow(
        id=row["id"],
        kind=row["kind"],
        vm=row["vm"],
        args=json.loads(row["args"]),
        state=row["state"],
        pid=row["pid"],
        error=row["error"],
    )


def _alive(row: sqlite3.Row) -> bool:
    """The flow's or lock's recorded owner still runs (see `csi_vm.store.owner`)."""
    recorded = owner.Owner(pid=row["pid"], start=row["pid_start"], boot=row["boot_id"])
    return PROC.alive(recorded)
