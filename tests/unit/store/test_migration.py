"""The store brings older schemas forward and records running VMs."""

from __future__ import annotations

import dataclasses
import pathlib
import sqlite3

import pytest

from csi_vm import errors, spec
from csi_vm.store import db, records, running

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


def test_a_version_2_store_keeps_its_snapshots_without_a_fingerprint(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.executescript(db._SCHEMA)
    for statement in db._MIGRATIONS[2].split(";"):
        conn.execute(statement)
    spec_json = spec.VMSpec.model_validate(
        {"name": "web", "disks": [{"name": "root", "size": 4096, "driver": "local"}]}
    ).model_dump_json()
    conn.execute("INSERT INTO snapshots VALUES ('s1', 'web', ?, 1.0)", (spec_json,))
    conn.execute(
        "INSERT INTO snapshot_disks VALUES ('s1', 'root', 'local', 'block', 4096,"
        " 'csi-snapshot', 'snap-1', '')"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()

    store = db.Store(path)
    assert store.connection().execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    old = records.get_snapshot(store, "s1").disk("root")
    assert (old.object_id, old.fingerprint) == ("snap-1", "")
    # A snapshot recorded now keeps its fingerprint.
    new = records.Snapshot(
        name="s2",
        vm="web",
        vm_spec=records.get_snapshot(store, "s1").vm_spec,
        created=2.0,
        disks=(dataclasses.replace(old, fingerprint='{"size": 4096}'),),
    )
    with store.transaction() as cur:
        records.insert_snapshot(cur, new)
    assert records.get_snapshot(store, "s2") == new
    store.close()


def test_a_version_4_store_gains_the_indexes_its_frequent_reads_use(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    conn.executescript(db._SCHEMA)
    for version in range(2, 5):
        for statement in db._MIGRATIONS[version].split(";"):
            if statement.strip():
                conn.execute(statement)
    conn.execute(
        "INSERT INTO flows (id, kind, vm, args, state, pid, started, updated)"
        " VALUES ('f1', 'create', 'web', '{}', 'running', 1, 1.0, 1.0)"
    )
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()

    store = db.Store(path)
    read = store.connection()
    assert read.execute("SELECT id FROM flows WHERE state = 'running'").fetchone()[0] == "f1"
    plans = {
        "SELECT * FROM flows WHERE state IN ('running', 'committed') ORDER BY started": (
            "flows_by_state"
        ),
        "SELECT * FROM flows ORDER BY updated DESC LIMIT 5": "flows_by_update",
        "SELECT * FROM snapshots WHERE vm = 'web' ORDER BY created": "snapshots_by_vm",
        "SELECT * FROM snapshots ORDER BY created": "snapshots_by_date",
    }
    for query, index in plans.items():
        plan = " ".join(row[3] for row in read.execute(f"EXPLAIN QUERY PLAN {query}"))
        assert f"USING INDEX {index}" in plan, (query, plan)
    store.close()
