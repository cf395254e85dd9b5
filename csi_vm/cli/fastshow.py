"""What `vm show NAME` prints, read and written with the standard library (see fastpath).

The queries are those of records.get_summary and running.find, on a store
opened read-only; the output is what vm_read.show_vm prints into a pipe.
A value either of them would print otherwise (a number that is not an
integer, a row that does not parse, a line rich would rewrite) makes it
answer None: the full CLI answers that line.
"""

from __future__ import annotations

import json
import os
import sqlite3

from csi_vm import humansize

# Not typing.TYPE_CHECKING: typing is a module `vm show` spares too.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

#: db.SCHEMA_VERSION: a store of another schema is migrated (or refused) by the full CLI
SCHEMA_VERSION = 5


def show(db: str, name: str, *, fmt: str, headers: bool) -> str | None:
    """What `vm show NAME -o FMT` prints of the store `db`; None where this module cannot tell."""
    try:
        found = _read(db, name)
    except (sqlite3.Error, ValueError, TypeError):
        return None  # the full CLI opens, migrates or reports the store
    return None if found is None else _render(found, fmt=fmt, headers=headers)


# -- the store -------------------------------------------------------------------

#: what `vm show` prints of a VM: name, vcpus, memory in MiB, disks, the node it runs on
Found = tuple[str, int, int, list[tuple[str, int, str, str, str]], str | None]


def _read(db: str, name: str) -> Found | None:
    """The VM `name` as records.get_summary and running.find read it; None: not for here."""
    if not os.path.isfile(db):
        return None  # the full CLI creates the store
    path = os.path.abspath(db).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    try:
        return _query(conn, name)
    finally:
        conn.close()


def _query(conn: sqlite3.Connection, name: str) -> Found | None:
    if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        return None
    unfinished = "SELECT 1 FROM flows WHERE state IN ('running', 'committed') LIMIT 1"
    if conn.execute(unfinished).fetchone() is not None:
        return None  # the full CLI words the warning of those whose process is gone
    vm = conn.execute(
        "SELECT json_extract(spec, '$.vcpus'), json_extract(spec, '$.memory_mib')"
        " FROM vms WHERE name = ?",
        (name,),
    ).fetchone()
    if vm is None or not _all(int, vm):
        return None
    disks = conn.execute(
        "SELECT name, size, mode, driver, volume_id FROM disks WHERE vm = ? ORDER BY rowid",
        (name,),
    ).fetchall()
    if not all(_all(str, (*d[:1], *d[2:])) and type(d[1]) is int and d[2] in _MODES for d in disks):
        return None
    run = conn.execute("SELECT node, boot FROM running WHERE vm = ?", (name,)).fetchone()
    if run is None:
        return name, vm[0], vm[1], disks, None
    json.loads(run[1])  # as running.find reads it: a broken row fails there too
    return (name, vm[0], vm[1], disks, run[0]) if type(run[0]) is str else None


#: diskmode.Mode's values
_MODES = ("block", "filesystem")


def _all(kind: type, values: Sequence[object]) -> bool:
    return all(type(value) is kind for value in values)


# -- the output ------------------------------------------------------------------


def _render(found: Found, *, fmt: str, headers: bool) -> str | None:
    """What vm_read.show_vm prints; None where rich would change the table's text."""
    name = found[0]
    if fmt == "name":
        return f"vm/{name}\n"
    if fmt == "json":
        return json.dumps(_as_dict(found), indent=2) + "\n"
    if fmt == "yaml":
        import yaml  # noqa: PLC0415 - only for -o yaml

        return yaml.safe_dump(_as_dict(found), sort_keys=False).rstrip() + "\n"
    return _table(found, wide=fmt == "wide", headers=headers)


def _as_dict(found: Found) -> dict[str, object]:
    name, vcpus, memory_mib, disks, node = found
    listed = [
        {"name": d, "size": size, "mode": mode, "driver": driver, "volume_id": volume}
        for d, size, mode, driver, volume in disks
    ]
    return {
        "name": name,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "disks": listed,
        "running_on": node,
    }


_COLUMNS = ("NAME", "RUNNING ON", "VCPUS", "MEMORY", "DISKS", "VOLUMES")


def _table(found: Found, *, wide: bool, headers: bool) -> str | None:
    name, vcpus, memory_mib, disks, node = found
    binary = humansize.binary
    row = (
        name,
        node or "-",
        str(vcpus),
        binary(memory_mib * 1024 * 1024),
        ", ".join(f"{d} ({binary(size)} {mode} on {driver})" for d, size, mode, driver, _ in disks),
        ", ".join(f"{d}={volume}" for d, _, _, _, volume in disks),
    )
    keep = len(_COLUMNS) if wide else len(_COLUMNS) - 1
    cells = [cell.replace("\n", " ") or "<none>" for cell in row[:keep]]
    lines = [_COLUMNS[:keep], cells] if headers else [cells]
    widths = [max(len(line[i]) for line in lines) for i in range(keep)]
    text = [
        "   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    # rich rewrites a line with other characters: the full CLI prints those
    if not all(line.isascii() and line.isprintable() for line in text):
        return None
    return "".join(f"{line}\n" for line in text)
