"""VMs, disks and snapshots as stored: typed frozen records and their queries."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from typing import TYPE_CHECKING

from csi_vm import errors
from csi_vm.store import db

if TYPE_CHECKING:
    from csi_vm import spec

# spec (pydantic models) is imported where a row is read: `vm list` of an
# empty store, the commonest first run, then never loads it.


@dataclasses.dataclass(frozen=True, kw_only=True)
class Disk:
    vm: str
    name: str
    driver: str
    mode: spec.Mode
    size: int
    volume_id: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class VM:
    name: str
    spec: spec.VMSpec
    disks: tuple[Disk, ...]
    created: float

    def disk(self, name: str) -> Disk:
        for disk in self.disks:
            if disk.name == name:
                return disk
        known = ", ".join(d.name for d in self.disks)
        raise errors.NotFound(f"VM {self.name!r} has no disk {name!r}", hint=f"its disks: {known}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SnapshotDisk:
    disk: str
    driver: str
    mode: spec.Mode
    size: int
    strategy: str
    object_id: str
    group_id: str = ""
    #: sampled blocks of the snapshot's data as taken (`effects.Fingerprint`
    #: as JSON); "" where none was recorded: a restore is then checked for size only
    fingerprint: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Snapshot:
    name: str
    vm: str
    vm_spec: spec.VMSpec
    created: float
    disks: tuple[SnapshotDisk, ...]

    def disk(self, name: str) -> SnapshotDisk:
        for disk in self.disks:
            if disk.disk == name:
                return disk
        raise errors.NotFound(f"snapshot {self.name!r} has no disk {name!r}")


# -- VMs ----------------------------------------------------------------------


def get_vm(store: db.Store, name: str) -> VM:
    vm = find_vm(store, name)
    if vm is None:
        raise errors.NotFound(f"no VM named {name!r}", hint="see `csi-vm vm list`")
    return vm


def find_vm(store: db.Store, name: str) -> VM | None:
    conn = store.connection()
    row = conn.execute("SELECT * FROM vms WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    disks = conn.execute("SELECT * FROM disks WHERE vm = ? ORDER BY rowid", (name,)).fetchall()
    return _vm(row, disks)


def list_vms(store: db.Store) -> list[VM]:
    conn = store.connection()
    vms = []
    for row in conn.execute("SELECT * FROM vms ORDER BY name").fetchall():
        disks = conn.execute(
            "SELECT * FROM disks WHERE vm = ? ORDER BY rowid", (row["name"],)
        ).fetchall()
        vms.append(_vm(row, disks))
    return vms


def insert_vm(cur: sqlite3.Cursor, *, vm_spec: spec.VMSpec, disks: list[Disk]) -> None:
    cur.execute(
        "INSERT INTO vms (name, spec, created) VALUES (?, ?, ?)",
        (vm_spec.name, vm_spec.model_dump_json(), time.time()),
    )
    for disk in disks:
        cur.execute(
            "INSERT INTO disks (vm, name, driver, mode, size, volume_id) VALUES (?, ?, ?, ?, ?, ?)",
            (disk.vm, disk.name, disk.driver, disk.mode.value, disk.size, disk.volume_id),
        )


def replace_disk_volume(
    cur: sqlite3.Cursor, *, vm: str, disk: str, volume_id: str, size: int
) -> None:
    cur.execute(
        "UPDATE disks SET volume_id = ?, size = ? WHERE vm = ? AND name = ?",
        (volume_id, size, vm, disk),
    )
    if cur.rowcount != 1:
        raise errors.DataSafetyError(
            f"disk {vm}/{disk} vanished from the store during an operation"
        )


def move_disk(cur: sqlite3.Cursor, *, vm: str, disk: str, driver: str, volume_id: str) -> None:
    """Point a disk at a volume of another driver (a storage migration to node-local storage)."""
    cur.execute(
        "UPDATE disks SET driver = ?, volume_id = ? WHERE vm = ? AND name = ?",
        (driver, volume_id, vm, disk),
    )
    if cur.rowcount != 1:
        raise errors.DataSafetyError(f"disk {vm}/{disk} vanished from the store during a move")


def delete_vm(cur: sqlite3.Cursor, name: str) -> None:
    cur.execute("DELETE FROM vms WHERE name = ?", (name,))


def _vm(row: sqlite3.Row, disks: list[sqlite3.Row]) -> VM:
    from csi_vm import spec  # noqa: PLC0415 - see the imports

    return VM(
        name=row["name"],
        spec=spec.VMSpec.model_validate_json(row["spec"]),
        created=row["created"],
        disks=tuple(
            Disk(
                vm=d["vm"],
                name=d["name"],
                driver=d["driver"],
                mode=spec.Mode(d["mode"]),
                size=d["size"],
                volume_id=d["volume_id"],
            )
            for d in disks
        ),
    )


# -- snapshots ----------------------------------------------------------------


def find_snapshot(store: db.Store, name: str) -> Snapshot | None:
    conn = store.connection()
    row = conn.execute("SELECT * FROM snapshots WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    disks = conn.execute(
        "SELECT * FROM snapshot_disks WHERE snapshot = ? ORDER BY rowid", (name,)
    ).fetchall()
    return _snapshot(row, disks)


def get_snapshot(store: db.Store, name: str) -> Snapshot:
    snap = find_snapshot(store, name)
    if snap is None:
        raise errors.NotFound(f"no snapshot named {name!r}", hint="see `csi-vm snapshot list`")
    return snap


def list_snapshots(store: db.Store, vm: str | None = None) -> list[Snapshot]:
    conn = store.connection()
    if vm is None:
        rows = conn.execute("SELECT * FROM snapshots ORDER BY created").fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM snapshots WHERE vm = ? ORDER BY created", (vm,)
        ).fetchall()
    result = []
    for row in rows:
        disks = conn.execute(
            "SELECT * FROM snapshot_disks WHERE snapshot = ? ORDER BY rowid", (row["name"],)
        ).fetchall()
        result.append(_snapshot(row, disks))
    return result


def insert_snapshot(cur: sqlite3.Cursor, snap: Snapshot) -> None:
    cur.execute(
        "INSERT INTO snapshots (name, vm, vm_spec, created) VALUES (?, ?, ?, ?)",
        (snap.name, snap.vm, snap.vm_spec.model_dump_json(), snap.created),
    )
    for d in snap.disks:
        cur.execute(
            "INSERT INTO snapshot_disks"
            " (snapshot, disk, driver, mode, size, strategy, object_id, group_id, fingerprint)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                snap.name,
                d.disk,
                d.driver,
                d.mode.value,
                d.size,
                d.strategy,
                d.object_id,
                d.group_id,
                d.fingerprint,
            ),
        )


def delete_snapshot(cur: sqlite3.Cursor, name: str) -> None:
    cur.execute("DELETE FROM snapshots WHERE name = ?", (name,))


def _snapshot(row: sqlite3.Row, disks: list[sqlite3.Row]) -> Snapshot:
    from csi_vm import spec  # noqa: PLC0415 - see the imports

    return Snapshot(
        name=row["name"],
        vm=row["vm"],
        vm_spec=spec.VMSpec.model_validate_json(row["vm_spec"]),
        created=row["created"],
        disks=tuple(
            SnapshotDisk(
                disk=d["disk"],
                driver=d["driver"],
                mode=spec.Mode(d["mode"]),
                size=d["size"],
                strategy=d["strategy"],
                object_id=d["object_id"],
                group_id=d["group_id"],
                fingerprint=d["fingerprint"],
            )
            for d in disks
        ),
    )


# -- driver capabilities ------------------------------------------------------


def cached_caps(store: db.Store, driver: str) -> str | None:
    row = (
        store.connection()
        .execute("SELECT report FROM driver_caps WHERE driver = ?", (driver,))
        .fetchone()
    )
    return None if row is None else str(row["report"])


def forget_caps(store: db.Store, driver: str) -> None:
    """Drop a driver's cached report: it was found wrong, the next plan probes afresh."""
    with store.transaction() as cur:
        cur.execute("DELETE FROM driver_caps WHERE driver = ?", (driver,))


def save_caps(store: db.Store, driver: str, report_json: str) -> None:
    with store.transaction() as cur:
        cur.execute(
            "INSERT OR REPLACE INTO driver_caps (driver, report, probed) VALUES (?, ?, ?)",
            (driver, report_json, time.time()),
        )
