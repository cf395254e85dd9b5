"""The flow journal and VM locks.

A flow writes each step as an intent row *before* doing it and marks it done
after. A flow is `running` until its commit transaction flips it to
`committed` together with the VM records, then `done`. A `running` flow whose
process is gone is rolled back; a `committed` one is rolled forward. When
that cannot be done (its driver does not answer), the flow keeps its state
and records why in `error`: it is pending, and only `csi-vm resume` retries it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from typing import Any

from csi_vm import errors
from csi_vm.store import db

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
    with store.transaction() as cur:
        _take_lock(cur, vm=vm, flow_id=flow_id)
        cur.execute(
            "INSERT INTO flows (id, kind, vm, args, state, pid, started, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (flow_id, kind, vm, json.dumps(args), RUNNING, os.getpid(), now, now),
        )


def _take_lock(cur: sqlite3.Cursor, *, vm: str, flow_id: str) -> None:
    row = cur.execute(
        "SELECT l.flow, l.pid, f.kind, f.error FROM vm_locks l"
        " LEFT JOIN flows f ON f.id = l.flow WHERE l.vm = ?",
        (vm,),
    ).fetchone()
    # A pending flow may be held by this very process (it tried to resume
    # it): waiting for it would never end.
    if row is not None and (row["error"] or not _alive(row["pid"])):
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
    cur.execute("INSERT INTO vm_locks (vm, flow, pid) VALUES (?, ?, ?)", (vm, flow_id, os.getpid()))


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
    return [_flow(r) for r in rows if not _alive(r["pid"])]


def recent(store: db.Store, *, limit: int = 50) -> list[FlowRow]:
    rows = (
        store.connection()
        .execute("SELECT * FROM flows ORDER BY updated DESC LIMIT ?", (limit,))
        .fetchall()
    )
    return [_flow(r) for r in rows]


def adopt(store: db.Store, flow_id: str) -> None:
    """Take over an interrupted flow (and its VM lock) for this process."""
    with store.transaction() as cur:
        cur.execute("UPDATE flows SET pid = ? WHERE id = ?", (os.getpid(), flow_id))
        cur.execute("UPDATE vm_locks SET pid = ? WHERE flow = ?", (os.getpid(), flow_id))


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; its flow will never finish.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stream:
            return stream.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
