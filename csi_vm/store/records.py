"""VMs, disks and snapshots as stored: typed frozen records and their queries."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from csi_vm import diskmode, errors
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
class Summary:
    """A VM as `vm list` shows it: its disks and the sizes of its spec."""

    name: str
    vcpus: int
    memory_mib: int
    disks: tuple[Disk, ...]


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
        raise _no_vm(name)
    return vm


def find_vm(store: db.Store, name: str) -> VM | None:
    found = _vm_rows(store, name, "*")
    return None if found is None else _vm(*found)


def get_summary(store: db.Store, name: str) -> Summary:
    """What `vm show` prints of a VM: its spec is not validated again (see _SUMMARY),
    so the command never builds the spec's validators."""
    found = _vm_rows(store, name, _SUMMARY)
    if found is None:
        raise _no_vm(name)
    row, disks = found
    return Summary(name=name, vcpus=row["vcpus"], memory_mib=row["mem"], disks=_disks(disks))


def _no_vm(name: str) -> errors.NotFound:
    return errors.NotFound(f"no VM named {name!r}", hint="see `csi-vm vm list`")


def _vm_rows(
    store: db.Store, name: str, columns: str
) -> tuple[sqlite3.Row, list[sqlite3.Row]] | None:
    conn = store.connection()
    row = conn.execute(
        f"SELECT {columns} FROM vms WHERE name = ?",  # noqa: S608 - constant columns
        (name,),
    ).fetchone()
    if row is None:
        return None
    disks = conn.execute(
        f"SELECT {_DISK_COLUMNS} FROM disks WHERE vm = ? ORDER BY rowid",  # noqa: S608 - constant
        (name,),
    ).fetchall()
    return row, disks


def list_vms(store: db.Store) -> list[VM]:
    """Every VM, by name, with its spec; a fleet is better read by `summary_pages`."""
    return [_vm(row, disks) for page in _row_pages(store, "*") for row, disks in page]


def summary(vm: VM) -> Summary:
    return Summary(name=vm.name, vcpus=vm.spec.vcpus, memory_mib=vm.spec.memory_mib, disks=vm.disks)


#: VMs read at a time: kubectl's default --chunk-size, a page costs a few
#: milliseconds, so a list shows its first lines at once whatever the fleet
PAGE = 500

# SQLite reads the two numbers out of the spec's JSON: validating 100,000
# specs again with pydantic took most of a whole list's time.
_SUMMARY = "name, json_extract(spec, '$.vcpus') AS vcpus, json_extract(spec, '$.memory_mib') AS mem"


def summary_pages(
    store: db.Store, *, size: int = PAGE, first: int | None = None
) -> Iterator[list[Summary]]:
    """All VMs by name, `size` at a time (the first page `first`), two indexed queries a page.

    Each page is read on its own (keyset paging: the next one starts after
    the last name), so no read is held open while the caller writes a page
    out. Every VM that exists throughout the listing comes exactly once, in
    order; one created or deleted meanwhile may or may not.
    """
    for page in _row_pages(store, _SUMMARY, size=size, first=first):
        yield [
            Summary(
                name=row["name"],
                vcpus=row["vcpus"],
                memory_mib=row["mem"],
                disks=_disks(disks),
            )
            for row, disks in page
        ]


Page: TypeAlias = list[tuple[sqlite3.Row, list[tuple[Any, ...]]]]


def _row_pages(
    store: db.Store, columns: str, *, size: int = PAGE, first: int | None = None
) -> Iterator[Page]:
    after = ""  # a name is never empty: every name sorts after it
    limit = size if first is None else first
    while True:
        page = _row_page(store, columns, after=after, size=limit)
        if page:
            yield page
        if len(page) < limit:
            return
        after, limit = page[-1][0]["name"], size


def _row_page(store: db.Store, columns: str, *, after: str, size: int) -> Page:
    conn = store.connection()
    # One read transaction (unless the caller is in one): the page and its
    # disks are one state of the store. WAL lets writers go on meanwhile.
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        rows = conn.execute(
            f"SELECT {columns} FROM vms WHERE name > ? ORDER BY name LIMIT ?",  # noqa: S608 - constant columns
            (after, size),
        ).fetchall()
        if not rows:
            return []
        # The page's names are consecutive: their disks are one range of the
        # disks' primary key (vm, name).
        plain = conn.cursor()
        plain.row_factory = None
        disks = plain.execute(
            f"SELECT {_DISK_COLUMNS} FROM disks WHERE vm BETWEEN ? AND ? ORDER BY vm, rowid",  # noqa: S608 - constant
            (rows[0]["name"], rows[-1]["name"]),
        ).fetchall()
    finally:
        if own:
            conn.execute("COMMIT")
    by_vm: dict[str, list[tuple[Any, ...]]] = {row["name"]: [] for row in rows}
    for disk in disks:
        by_vm[disk[0]].append(disk)
    return [(row, by_vm[row["name"]]) for row in rows]


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


def _vm(row: sqlite3.Row, disks: Sequence[Sequence[Any]]) -> VM:
    from csi_vm import spec  # noqa: PLC0415 - see the imports

    return VM(
        name=row["name"],
        spec=spec.VMSpec.model_validate_json(row["spec"]),
        created=row["created"],
        disks=_disks(disks),
    )


#: a stored mode's enum member, looked up without Enum's call machinery
_MODES = {mode.value: mode for mode in diskmode.Mode}
#: the columns `_disks` reads, in its order
_DISK_COLUMNS = "vm, name, driver, mode, size, volume_id"


def _disks(rows: Sequence[Sequence[Any]]) -> tuple[Disk, ...]:
    """Disk records of rows of `_DISK_COLUMNS` (plain tuples: half the cost of
    sqlite3.Row, which a list of 100,000 VMs feels)."""
    return tuple(
        Disk(vm=vm, name=name, driver=driver, mode=_MODES[mode], size=size, volume_id=volume_id)
        for vm, name, driver, mode, size, volume_id in rows
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
    """Every snapshot (of `vm`), oldest first; `snapshot_pages` reads them a page at a time."""
    return [snap for page in snapshot_pages(store, vm) for snap in page]


def snapshot_pages(
    store: db.Store, vm: str | None = None, *, size: int = PAGE
) -> Iterator[list[Snapshot]]:
    """Snapshots (of `vm`) oldest first, `size` at a time, by index (see `summary_pages`)."""
    after: tuple[float, int] = (float("-inf"), 0)  # (created, rowid) of the last one read
    while True:
        rows, disks = _snapshot_page(store, vm, after=after, size=size)
        if rows:
            by_name: dict[str, list[sqlite3.Row]] = {row["name"]: [] for row in rows}
            for disk in disks:
                by_name[disk["snapshot"]].append(disk)
            yield [_snapshot(row, by_name[row["name"]]) for row in rows]
        if len(rows) < size:
            return
        after = (rows[-1]["created"], rows[-1]["rowid"])


def _snapshot_page(
    store: db.Store, vm: str | None, *, after: tuple[float, int], size: int
) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    # Snapshots taken in the same second keep their order by rowid.
    where = "(created, rowid) > (?, ?)" + ("" if vm is None else " AND vm = ?")
    conn = store.connection()
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        rows = conn.execute(
            f"SELECT rowid, * FROM snapshots WHERE {where} ORDER BY created, rowid LIMIT ?",  # noqa: S608 - constant text
            (*after, *(() if vm is None else (vm,)), size),
        ).fetchall()
        marks = ", ".join("?" * len(rows))
        disks = conn.execute(
            f"SELECT * FROM snapshot_disks WHERE snapshot IN ({marks}) ORDER BY snapshot, rowid",  # noqa: S608 - only placeholders
            [row["name"] for row in rows],
        ).fetchall()
    finally:
        if own:
            conn.execute("COMMIT")
    return rows, disks


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
