"""Group snapshot rows; their member snapshots live in the snapshots table."""

from __future__ import annotations

import json
import sqlite3

from csi_vm.localdriver import catalog, model


def _group(cur: sqlite3.Cursor, row: sqlite3.Row) -> model.GroupSnapshot:
    return model.GroupSnapshot(
        group_id=row["id"],
        name=row["name"],
        source_volume_ids=tuple(json.loads(row["source_volume_ids"])),
        created_ns=row["created_ns"],
        parameters=catalog.loads(row["parameters"]),
        members=catalog.group_members(cur, row["id"]),
    )


def get_group(cur: sqlite3.Cursor, group_id: str) -> model.GroupSnapshot | None:
    row = cur.execute("SELECT * FROM groups WHERE id = ?", (group_id,)).fetchone()
    return _group(cur, row) if row else None


def get_group_by_name(cur: sqlite3.Cursor, name: str) -> model.GroupSnapshot | None:
    row = cur.execute("SELECT * FROM groups WHERE name = ?", (name,)).fetchone()
    return _group(cur, row) if row else None


def insert_group(cur: sqlite3.Cursor, group: model.GroupSnapshot) -> None:
    cur.execute(
        "INSERT INTO groups (id, name, source_volume_ids, created_ns, parameters)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            group.group_id,
            group.name,
            json.dumps(list(group.source_volume_ids)),
            group.created_ns,
            catalog.dumps(group.parameters),
        ),
    )
    for member in group.members:
        catalog.insert_snapshot(cur, member)


def delete_group(cur: sqlite3.Cursor, group_id: str) -> None:
    cur.execute("DELETE FROM snapshots WHERE group_id = ?", (group_id,))
    cur.execute("DELETE FROM groups WHERE id = ?", (group_id,))
