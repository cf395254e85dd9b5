"""Controller attachments (ControllerPublishVolume) and the nodes that share a state dir."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from csi_vm import errors
from csi_vm.localdriver import model


def publications(cur: sqlite3.Cursor, volume_id: str) -> dict[str, tuple[bool, model.Capability]]:
    rows = cur.execute(
        "SELECT node_id, readonly, capability FROM publications WHERE volume_id = ?",
        (volume_id,),
    )
    return {
        r["node_id"]: (bool(r["readonly"]), model.Capability.from_json(r["capability"]))
        for r in rows
    }


def published_nodes(cur: sqlite3.Cursor, volume_ids: Sequence[str]) -> dict[str, list[str]]:
    marks = ",".join("?" * len(volume_ids))
    rows = cur.execute(
        f"SELECT volume_id, node_id FROM publications WHERE volume_id IN ({marks})"  # noqa: S608
        " ORDER BY node_id",
        tuple(volume_ids),
    )
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["volume_id"], []).append(row["node_id"])
    return found


def add_publication(
    cur: sqlite3.Cursor, *, volume_id: str, node_id: str, readonly: bool, cap: model.Capability
) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO publications (volume_id, node_id, readonly, capability)"
        " VALUES (?, ?, ?, ?)",
        (volume_id, node_id, int(readonly), cap.to_json()),
    )


def remove_publication(cur: sqlite3.Cursor, *, volume_id: str, node_id: str) -> None:
    if node_id:
        cur.execute(
            "DELETE FROM publications WHERE volume_id = ? AND node_id = ?", (volume_id, node_id)
        )
    else:  # CSI: an empty node_id means "from every node"
        cur.execute("DELETE FROM publications WHERE volume_id = ?", (volume_id,))


def register_node(cur: sqlite3.Cursor, node_id: str) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO nodes (node_id, seen_ns) VALUES (?, ?)", (node_id, time.time_ns())
    )


def node_exists(cur: sqlite3.Cursor, node_id: str) -> bool:
    return cur.execute("SELECT 1 FROM nodes WHERE node_id = ?", (node_id,)).fetchone() is not None


def claim_state_dir(cur: sqlite3.Cursor, *, mode: str) -> None:
    """Record who owns the state dir; refuse a second owner of another kind.

    mode is 'shared' or 'node:<id>': a node-local state dir serves one node only,
    since its volumes are pinned to that node.
    """
    cur.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('owner', ?)", (mode,))
    owner = cur.execute("SELECT value FROM meta WHERE key = 'owner'").fetchone()["value"]
    if owner != mode:
        raise errors.InvalidInput(
            f"the state dir belongs to {owner!r}, not {mode!r}",
            hint="use the same --node-id (and --shared setting) as when it was created",
        )
