"""The SQLite metadata store: one file, WAL mode, schema versioned by user_version.

Several csi-vm processes may use one store at once (a long copy in one, a
`list` in another): WAL lets readers proceed during a write, and the busy
timeout makes writers wait for each other instead of failing.
"""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
import threading
from collections.abc import Iterator

from csi_vm import errors

SCHEMA_VERSION = 5

#: schema changes after the first release, by the version they lead to; a
#: store is brought forward one version at a time, in one transaction
_MIGRATIONS: dict[int, str] = {
    2: """
CREATE TABLE running (
    vm TEXT PRIMARY KEY,
    node TEXT NOT NULL,              -- config node name the VM runs on
    uri TEXT NOT NULL,               -- that node's libvirt URI
    domain TEXT NOT NULL,            -- libvirt domain name
    boot TEXT NOT NULL,              -- how it was booted, as JSON
    started REAL NOT NULL
);
""",
    # What a snapshot disk's data looked like when it was taken (see
    # flows/effects.py): a restore is compared with it. Snapshots recorded
    # before keep '' and are restored with the size check only.
    3: """
ALTER TABLE snapshot_disks ADD COLUMN fingerprint TEXT NOT NULL DEFAULT ''
""",
    # A flow's and a lock's owner is its PID plus that process's start time
    # and the boot id (see store/owner.py): a bare PID outlives a reboot and
    # gets reused. Rows recorded before keep -1 and '' and are judged by PID.
    4: """
ALTER TABLE flows ADD COLUMN pid_start INTEGER NOT NULL DEFAULT -1;
ALTER TABLE flows ADD COLUMN boot_id TEXT NOT NULL DEFAULT '';
ALTER TABLE vm_locks ADD COLUMN pid_start INTEGER NOT NULL DEFAULT -1;
ALTER TABLE vm_locks ADD COLUMN boot_id TEXT NOT NULL DEFAULT ''
""",
    # Finished flows stay in the table as history, one or more a VM: the
    # unfinished ones, which every command looks for, and the latest ones
    # (`resume`) are found by index, not by reading them all. A VM's
    # snapshots and the list of all snapshots are read in date order.
    5: """
CREATE INDEX flows_by_state ON flows (state, started);
CREATE INDEX flows_by_update ON flows (updated);
CREATE INDEX snapshots_by_vm ON snapshots (vm, created);
CREATE INDEX snapshots_by_date ON snapshots (created)
""",
}

_SCHEMA = """
CREATE TABLE vms (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,              -- the VM spec as JSON
    created REAL NOT NULL
);
CREATE TABLE disks (
    vm TEXT NOT NULL REFERENCES vms(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    driver TEXT NOT NULL,
    mode TEXT NOT NULL,
    size INTEGER NOT NULL,
    volume_id TEXT NOT NULL,
    PRIMARY KEY (vm, name)
);
CREATE TABLE snapshots (
    name TEXT PRIMARY KEY,
    vm TEXT NOT NULL,
    vm_spec TEXT NOT NULL,           -- the VM as it was, for restore --as
    created REAL NOT NULL
);
CREATE TABLE snapshot_disks (
    snapshot TEXT NOT NULL REFERENCES snapshots(name) ON DELETE CASCADE,
    disk TEXT NOT NULL,
    driver TEXT NOT NULL,
    mode TEXT NOT NULL,
    size INTEGER NOT NULL,
    strategy TEXT NOT NULL,          -- csi-snapshot or host-copy
    object_id TEXT NOT NULL,         -- CSI snapshot id, or the copy's volume id
    group_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (snapshot, disk)
);
CREATE TABLE flows (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    vm TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL,             -- running, committed, done, rolled-back
    pid INTEGER NOT NULL,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE flow_steps (
    flow TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    data TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (flow, seq)
);
CREATE TABLE vm_locks (
    vm TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    pid INTEGER NOT NULL
);
CREATE TABLE driver_caps (
    driver TEXT PRIMARY KEY,
    report TEXT NOT NULL,
    probed REAL NOT NULL
);
"""


class Store:
    """A connection per thread to one store file."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise errors.InvalidInput(
                f"cannot create the store directory {path.parent}: {err}"
            ) from err
        self._migrate()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """One atomic unit of change; BEGIN IMMEDIATE takes the write lock up front."""
        conn = self.connection()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise errors.InvalidInput(f"cannot open the store {self.path}: {err}") from err
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # The journal is what makes flows crash-safe: a committed step must
        # survive a power cut, so FULL rather than WAL's usual NORMAL.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _migrate(self) -> None:
        conn = self.connection()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise errors.DataSafetyError(f"{self.path} is not a csi-vm store: {err}") from err
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise errors.DataSafetyError(
                f"store {self.path} has schema {version}, "
                f"newer than this csi-vm ({SCHEMA_VERSION})",
                hint="upgrade csi-vm",
            )
        with self.transaction() as cur:
            if version == 0:
                _execute(cur, _SCHEMA)
                version = 1
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _execute(cur, _MIGRATIONS[target])
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _execute(cur: sqlite3.Cursor, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            cur.execute(statement)
