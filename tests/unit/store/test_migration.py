"""The store brings older schemas forward and records running VMs."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest

from csi_vm import errors
from csi_vm.store import db, running

pytestmark = pytest.mark.timeout(30)


def test_a_version_1_store_gains_the_running_table_and_keeps_its_rows(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(db._SCHEMA)
    conn.execute("INSERT INTO vms (name, spec, created) VALUES ('old', '{}', 1.0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    store = db.Store(path)
    assert store.connection().execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    assert store.connection().execute("SELECT name FROM vms").fetchone()[0] == "old"
    assert running.find(store, "old") is None
    store.close()


def test_running_rows_round_trip_and_refuse_offline_work(tmp_path: pathlib.Path) -> None:
    store = db.Store(tmp_path / "new.db")
    row = running.Running(
        vm="web", node="node-a", uri="qemu:///system", domain="web", boot={}, started=1.0
    )
    with store.transaction() as cur:
        running.insert(cur, row)
    assert running.get(store, "web") == row
    with pytest.raises(errors.Rejected, match="running on node-a"):
        running.require_stopped(store, "web", what="an import")
    with store.transaction() as cur:
        running.move(cur, vm="web", node="node-b", uri="qemu+unix:///b")
    assert running.get(store, "web").node == "node-b"
    with store.transaction() as cur:
        running.delete(cur, "web")
    assert running.list_all(store) == []
    store.close()
