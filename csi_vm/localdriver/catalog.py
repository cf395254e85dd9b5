"""Volume and snapshot rows, and the pagination of list calls over them.

Every function takes the cursor of a transaction opened by the caller (see
`db.Database`), so one RPC's reads and writes commit together.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from csi_vm.localdriver import faults, model

T = TypeVar("T")


def dumps(mapping: dict[str, str]) -> str:
    return json.dumps(mapping, sort_keys=True)


def loads(text: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(text).items()}


# --- volumes -------------------------------------------------------------------------


def _volume(row: sqlite3.Row) -> model.Volume:
    source = model.Source(row["source_kind"], row["source_id"]) if row["source_kind"] else None
    return model.Volume(
        volume_id=row["id"],
        name=row["name"],
        size=row["size"],
        pinned_node=row["pinned_node"],
        source=source,
        parameters=loads(row["parameters"]),
        mutable=loads(row["mutable"]),
        created_ns=row["created_ns"],
        access_types=tuple(row["access_types"].split(",")),
        seq=row["seq"],
    )


def get_volume(cur: sqlite3.Cursor, volume_id: str) -> model.Volume | None:
    row = cur.execute("SELECT * FROM volumes WHERE id = ?", (volume_id,)).fetchone()
    return _volume(row) if row else None


def get_volume_by_name(cur: sqlite3.Cursor, name: str) -> model.Volume | None:
    row = cur.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
    return _volume(row) if row else None


def insert_volume(cur: sqlite3.Cursor, vol: model.Volume) -> None:
    """Insert a new volume row; sqlite3.IntegrityError if the name is taken meanwhile."""
    cur.execute(
        "INSERT INTO volumes (id, name, size, pinned_node, source_kind, source_id, parameters,"
        " mutable, access_types, created_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            vol.volume_id,
            vol.name,
            vol.size,
            vol.pinned_node,
            vol.source.kind if vol.source else "",
            vol.source.object_id if vol.source else "",
            dumps(vol.parameters),
            dumps(vol.mutable),
            ",".join(vol.access_types),
            vol.created_ns,
        ),
    )


def delete_volume(cur: sqlite3.Cursor, volume_id: str) -> None:
    cur.execute("DELETE FROM volumes WHERE id = ?", (volume_id,))
    cur.execute("DELETE FROM publications WHERE volume_id = ?", (volume_id,))


def set_volume_size(cur: sqlite3.Cursor, volume_id: str, size: int) -> None:
    cur.execute("UPDATE volumes SET size = ? WHERE id = ?", (size, volume_id))


def set_mutable(cur: sqlite3.Cursor, volume_id: str, mutable: dict[str, str]) -> None:
    cur.execute("UPDATE volumes SET mutable = ? WHERE id = ?", (dumps(mutable), volume_id))


def list_volumes(cur: sqlite3.Cursor, *, token: str, limit: int) -> model.Page[model.Volume]:
    after = parse_token(cur, token, table="volumes")
    rows = cur.execute(
        "SELECT * FROM volumes WHERE seq > ? ORDER BY seq LIMIT ?", (after, _sql_limit(limit))
    ).fetchall()
    return _page([_volume(r) for r in rows], limit, key=lambda v: v.seq)


def all_ids(cur: sqlite3.Cursor, table: str) -> set[str]:
    if table not in {"volumes", "snapshots"}:
        raise ValueError(table)
    return {row[0] for row in cur.execute(f"SELECT id FROM {table}")}  # noqa: S608


# --- snapshots -----------------------------------------------------------------------


def _snapshot(row: sqlite3.Row) -> model.Snapshot:
    return model.Snapshot(
        snapshot_id=row["id"],
        name=row["name"],
        source_volume_id=row["source_volume_id"],
        size=row["size"],
        created_ns=row["created_ns"],
        group_id=row["group_id"],
        parameters=loads(row["parameters"]),
        seq=row["seq"],
    )


def get_snapshot(cur: sqlite3.Cursor, snapshot_id: str) -> model.Snapshot | None:
    row = cur.execute("SELECT * FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()
    return _snapshot(row) if row else None


def get_snapshot_by_name(cur: sqlite3.Cursor, name: str) -> model.Snapshot | None:
    row = cur.execute("SELECT * FROM snapshots WHERE name = ?", (name,)).fetchone()
    return _snapshot(row) if row else None


def insert_snapshot(cur: sqlite3.Cursor, snap: model.Snapshot) -> None:
    cur.execute(
        "INSERT INTO snapshots (id, name, source_volume_id, size, created_ns, group_id,"
        " parameters) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            snap.snapshot_id,
            snap.name,
            snap.source_volume_id,
            snap.size,
            snap.created_ns,
            snap.group_id,
            dumps(snap.parameters),
        ),
    )


def delete_snapshot(cur: sqlite3.Cursor, snapshot_id: str) -> None:
    cur.execute("DELETE FROM snapshots WHERE id = ?", (snapshot_id,))


def list_snapshots(
    cur: sqlite3.Cursor, *, token: str, limit: int, source_volume_id: str
) -> model.Page[model.Snapshot]:
    after = parse_token(cur, token, table="snapshots")
    where, args = "seq > ?", list[object]([after])
    if source_volume_id:
        where += " AND source_volume_id = ?"
        args.append(source_volume_id)
    rows = cur.execute(
        f"SELECT * FROM snapshots WHERE {where} ORDER BY seq LIMIT ?",  # noqa: S608
        (*args, _sql_limit(limit)),
    ).fetchall()
    return _page([_snapshot(r) for r in rows], limit, key=lambda s: s.seq)


def group_members(cur: sqlite3.Cursor, group_id: str) -> tuple[model.Snapshot, ...]:
    rows = cur.execute("SELECT * FROM snapshots WHERE group_id = ? ORDER BY seq", (group_id,))
    return tuple(_snapshot(r) for r in rows)


# --- pagination ----------------------------------------------------------------------


def parse_token(cur: sqlite3.Cursor, token: str, *, table: str) -> int:
    """Tokens are the seq of the last entry returned: stable across deletions.

    A token above the highest seq ever handed out was not issued here (CSI: ABORTED).
    """
    if not token:
        return 0
    issued = cur.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    if not token.isdigit() or len(token) > 18 or int(token) > (issued[0] if issued else 0):
        raise faults.InvalidToken(
            f"starting_token {token[:40]!r} was not issued by this driver",
            hint="start again with an empty starting_token",
        )
    return int(token)


def _sql_limit(limit: int) -> int:
    return -1 if limit <= 0 else limit + 1  # one extra row tells whether a next page exists


def _page(items: list[T], limit: int, *, key: Callable[[T], int]) -> model.Page[T]:
    if 0 < limit < len(items):
        kept = items[:limit]
        return model.Page(tuple(kept), str(key(kept[-1])))
    return model.Page(tuple(items), "")
