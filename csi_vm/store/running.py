"""Which VMs run, and where: one row per running VM.

A row is written after the launcher started the domain and removed after it
stopped it, so every other command can tell a running VM from a stopped one
(offline disk operations refuse running VMs; snapshot and expand switch to
their online forms). A migration rewrites the row in the same transaction
that switches the VM's disks.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import time
from typing import Any

from csi_vm import errors
from csi_vm.store import db


@dataclasses.dataclass(frozen=True, kw_only=True)
class Running:
    vm: str
    node: str
    uri: str
    domain: str
    boot: dict[str, Any]  # {"kernel", "initramfs", "cmdline"} or {} (boot from disk)
    started: float


def find(store: db.Store, vm: str) -> Running | None:
    row = store.connection().execute("SELECT * FROM running WHERE vm = ?", (vm,)).fetchone()
    return None if row is None else _running(row)


def get(store: db.Store, vm: str) -> Running:
    found = find(store, vm)
    if found is None:
        raise errors.Rejected(f"VM {vm!r} is not running", hint=f"start it: csi-vm vm start {vm}")
    return found


def list_all(store: db.Store) -> list[Running]:
    rows = store.connection().execute("SELECT * FROM running ORDER BY vm").fetchall()
    return [_running(r) for r in rows]


def nodes_between(store: db.Store, *, first: str, last: str) -> dict[str, str]:
    """The node of each running VM named `first` to `last`: one page of `vm list`."""
    rows = (
        store.connection()
        .execute("SELECT vm, node FROM running WHERE vm BETWEEN ? AND ?", (first, last))
        .fetchall()
    )
    return {row["vm"]: row["node"] for row in rows}


def insert(cur: sqlite3.Cursor, run: Running) -> None:
    cur.execute(
        "INSERT INTO running (vm, node, uri, domain, boot, started) VALUES (?, ?, ?, ?, ?, ?)",
        (run.vm, run.node, run.uri, run.domain, json.dumps(run.boot), run.started or time.time()),
    )


def move(cur: sqlite3.Cursor, *, vm: str, node: str, uri: str) -> None:
    """Record that the VM now runs on another node (the commit of a migration)."""
    cur.execute("UPDATE running SET node = ?, uri = ? WHERE vm = ?", (node, uri, vm))
    if cur.rowcount != 1:
        raise errors.DataSafetyError(f"VM {vm} vanished from the running table during a migration")


def delete(cur: sqlite3.Cursor, vm: str) -> None:
    cur.execute("DELETE FROM running WHERE vm = ?", (vm,))


def require_stopped(store: db.Store, vm: str, *, what: str) -> None:
    """Refuse an offline operation on a running VM: it would change disks under the guest."""
    run = find(store, vm)
    if run is not None:
        raise errors.Rejected(
            f"VM {vm!r} is running on {run.node}: {what} needs it stopped",
            hint=f"csi-vm vm stop {vm} first",
        )


def _running(row: sqlite3.Row) -> Running:
    return Running(
        vm=row["vm"],
        node=row["node"],
        uri=row["uri"],
        domain=row["domain"],
        boot=json.loads(row["boot"]),
        started=row["started"],
    )
