"""Node-side tables: where a volume is staged and every path it is published at.

The kernel holds the truth (loop devices, mounts); these rows remember what
the driver set up so that unstage/unpublish can undo it after a restart and
so that DeleteVolume can refuse a volume still in use.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from csi_vm.localdriver import model


@dataclasses.dataclass(frozen=True)
class Staging:
    volume_id: str
    node_id: str
    path: str
    cap: model.Capability
    device: str  # the loop device attached for this staging


@dataclasses.dataclass(frozen=True)
class Target:
    node_id: str
    path: str
    volume_id: str
    cap: model.Capability
    readonly: bool
    device: str
    private_device: bool  # attached for this target alone, detached with it


def _staging(row: sqlite3.Row) -> Staging:
    return Staging(
        volume_id=row["volume_id"],
        node_id=row["node_id"],
        path=row["path"],
        cap=model.Capability.from_json(row["capability"]),
        device=row["device"],
    )


def _target(row: sqlite3.Row) -> Target:
    return Target(
        node_id=row["node_id"],
        path=row["path"],
        volume_id=row["volume_id"],
        cap=model.Capability.from_json(row["capability"]),
        readonly=bool(row["readonly"]),
        device=row["device"],
        private_device=bool(row["private_device"]),
    )


def get_staging(cur: sqlite3.Cursor, *, volume_id: str, node_id: str) -> Staging | None:
    row = cur.execute(
        "SELECT * FROM stagings WHERE volume_id = ? AND node_id = ?", (volume_id, node_id)
    ).fetchone()
    return _staging(row) if row else None


def stagings_of(cur: sqlite3.Cursor, volume_id: str) -> list[Staging]:
    """Stagings of a volume on every node (several with --shared)."""
    rows = cur.execute("SELECT * FROM stagings WHERE volume_id = ?", (volume_id,))
    return [_staging(r) for r in rows]


def device_in_use(cur: sqlite3.Cursor, *, volume_id: str, device: str) -> bool:
    """Whether any staging or target (any node) still uses this loop device."""
    query = (
        "SELECT 1 FROM stagings WHERE volume_id = ? AND device = ?"
        " UNION ALL SELECT 1 FROM targets WHERE volume_id = ? AND device = ?"
    )
    return cur.execute(query, (volume_id, device, volume_id, device)).fetchone() is not None


def add_staging(cur: sqlite3.Cursor, staging: Staging) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO stagings (volume_id, node_id, path, capability, device)"
        " VALUES (?, ?, ?, ?, ?)",
        (
            staging.volume_id,
            staging.node_id,
            staging.path,
            staging.cap.to_json(),
            staging.device,
        ),
    )


def remove_staging(cur: sqlite3.Cursor, *, volume_id: str, node_id: str) -> None:
    cur.execute("DELETE FROM stagings WHERE volume_id = ? AND node_id = ?", (volume_id, node_id))


def get_target(cur: sqlite3.Cursor, *, node_id: str, path: str) -> Target | None:
    row = cur.execute(
        "SELECT * FROM targets WHERE node_id = ? AND path = ?", (node_id, path)
    ).fetchone()
    return _target(row) if row else None


def targets_of(cur: sqlite3.Cursor, *, volume_id: str, node_id: str | None) -> list[Target]:
    """Targets of a volume on one node, or on every node when node_id is None."""
    if node_id is None:
        rows = cur.execute("SELECT * FROM targets WHERE volume_id = ?", (volume_id,))
    else:
        rows = cur.execute(
            "SELECT * FROM targets WHERE volume_id = ? AND node_id = ?", (volume_id, node_id)
        )
    return [_target(r) for r in rows]


def add_target(cur: sqlite3.Cursor, target: Target) -> None:
    cur.execute(
        "INSERT OR REPLACE INTO targets (node_id, path, volume_id, capability, readonly, device,"
        " private_device) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            target.node_id,
            target.path,
            target.volume_id,
            target.cap.to_json(),
            int(target.readonly),
            target.device,
            int(target.private_device),
        ),
    )


def remove_target(cur: sqlite3.Cursor, *, node_id: str, path: str) -> None:
    cur.execute("DELETE FROM targets WHERE node_id = ? AND path = ?", (node_id, path))


def users(cur: sqlite3.Cursor, volume_id: str) -> list[str]:
    """Human-readable list of every staging and target of a volume, on any node."""
    found = [f"staged on {s.node_id} at {s.path}" for s in stagings_of(cur, volume_id)]
    targets = targets_of(cur, volume_id=volume_id, node_id=None)
    return found + [f"published on {t.node_id} at {t.path}" for t in targets]
