"""The SQLite file holding the driver's state, and how to run a transaction on it.

One connection per process, guarded by a lock: every statement here is short
(file work happens outside transactions), so serialising them costs less than
a connection per gRPC thread and keeps shutdown simple.

Several driver processes may share the file (--shared), hence WAL (readers
never block the writer), a busy timeout instead of instant SQLITE_BUSY, and
BEGIN IMMEDIATE for every write so two processes never both read-then-write.
synchronous=NORMAL: in WAL mode a commit survives a killed process (the log
is in the page cache); only a power cut can lose the last commits.
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import threading
from collections.abc import Iterator

from csi_vm import errors

_SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, seen_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS volumes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    pinned_node TEXT,
    source_kind TEXT NOT NULL DEFAULT '',
    source_id TEXT NOT NULL DEFAULT '',
    parameters TEXT NOT NULL DEFAULT '{}',
    mutable TEXT NOT NULL DEFAULT '{}',
    access_types TEXT NOT NULL DEFAULT 'mount',
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    source_volume_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    group_id TEXT,
    parameters TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS snapshots_by_source ON snapshots (source_volume_id);
CREATE INDEX IF NOT EXISTS snapshots_by_group ON snapshots (group_id);
CREATE TABLE IF NOT EXISTS groups (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    source_volume_ids TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    parameters TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS publications (
    volume_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    readonly INTEGER NOT NULL,
    capability TEXT NOT NULL,
    PRIMARY KEY (volume_id, node_id)
);
CREATE TABLE IF NOT EXISTS stagings (
    volume_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    path TEXT NOT NULL,
    capability TEXT NOT NULL,
    device TEXT NOT NULL,
    PRIMARY KEY (volume_id, node_id)
);
CREATE TABLE IF NOT EXISTS targets (
    node_id TEXT NOT NULL,
    path TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    capability TEXT NOT NULL,
    readonly INTEGER NOT NULL,
    device TEXT NOT NULL,
    private_device INTEGER NOT NULL,
    PRIMARY KEY (node_id, path)
);
CREATE INDEX IF NOT EXISTS targets_by_volume ON targets (volume_id);
"""

#: how long a writer waits for another process's transaction before giving up
BUSY_TIMEOUT_MS = 10_000


class Database:
    """The state file; use `transaction()` for writes and `read()` for queries."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # check_same_thread=False: gRPC runs handlers on pool threads; the lock
        # above makes sure only one of them uses the connection at a time.
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._create_schema()

    def _create_schema(self) -> None:
        with self._lock:
            # executescript commits on its own; the statements are idempotent.
            self._conn.executescript(_SCHEMA)
        with self.transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (_SCHEMA_VERSION,)
            )
            row = cur.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row["value"] != _SCHEMA_VERSION:
            raise errors.DataSafetyError(
                f"state database {self.path} has schema {row['value']}, "
                f"this driver understands {_SCHEMA_VERSION}"
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                self._conn.rollback()
                raise
            else:
                self._conn.commit()
            finally:
                cur.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """A read-only transaction: all its queries see one snapshot of the state."""
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                yield cur
            finally:
                self._conn.rollback()
                cur.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
