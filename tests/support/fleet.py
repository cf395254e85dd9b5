"""A store holding a fleet of VMs, written with plain SQL in one transaction.

    fleet.seed(store, count=100_000)    # vm-000000 ... vm-099999, 2 disks each

Making 100,000 VMs through `csi-vm vm create` would take hours; these rows
are what that command leaves behind (a VM, its disks, a finished create
flow, a running row for every tenth VM), so a read of the store costs what
it costs in a real fleet. Their volumes do not exist: only commands that read
the store may be pointed at them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from csi_vm.store import db

MIB = 1024 * 1024
DISKS = ("root", "data")
#: every RUNNING_EVERY-th VM has a running row, so `vm list` joins real rows
RUNNING_EVERY = 10


def name(index: int) -> str:
    """The name of the seeded VM number `index`: zero-padded, so names sort as numbers."""
    return f"vm-{index:06d}"


def seed(store: db.Store, *, count: int, start: int = 0) -> None:
    """Add VMs number `start` to `start + count - 1`, in one transaction."""
    indexes = range(start, start + count)
    with store.transaction() as cur:
        cur.executemany(
            "INSERT INTO vms (name, spec, created) VALUES (?, ?, ?)",
            ((name(i), _spec_json(name(i)), 1.0e9 + i) for i in indexes),
        )
        cur.executemany(
            "INSERT INTO disks (vm, name, driver, mode, size, volume_id)"
            " VALUES (?, ?, 'local', 'block', ?, ?)",
            _disk_rows(indexes),
        )
        cur.executemany(
            "INSERT INTO flows (id, kind, vm, args, state, pid, started, updated)"
            " VALUES (?, 'create', ?, '{}', 'done', 1, ?, ?)",
            ((f"create-seed{i:06d}", name(i), 1.0e9 + i, 1.0e9 + i) for i in indexes),
        )
        cur.executemany(
            "INSERT INTO running (vm, node, uri, domain, boot, started)"
            " VALUES (?, 'node-a', 'qemu:///system', ?, '{}', 1.0e9)",
            ((name(i), name(i)) for i in indexes if i % RUNNING_EVERY == 0),
        )


def seed_snapshots(store: db.Store, *, vms: int, each: int) -> list[str]:
    """`each` snapshots of the first `vms` seeded VMs, taken round by round:
    every VM's k-th snapshot has the same time. Returns their names, oldest first
    (in a round, in the order they were written)."""
    rows = [
        (f"{name(i)}-snap-{k}", name(i), _spec_json(name(i)), 2.0e9 + k)
        for k in range(each)
        for i in range(vms)
    ]
    with store.transaction() as cur:
        cur.executemany(
            "INSERT INTO snapshots (name, vm, vm_spec, created) VALUES (?, ?, ?, ?)", rows
        )
        cur.executemany(
            "INSERT INTO snapshot_disks (snapshot, disk, driver, mode, size, strategy, object_id)"
            " VALUES (?, ?, 'local', 'block', ?, 'csi-snapshot', ?)",
            ((snap, d, MIB, f"{snap}-{d}") for snap, *_ in rows for d in DISKS),
        )
    return [snap for snap, *_ in rows]


def _disk_rows(indexes: range) -> Iterator[tuple[str, str, int, str]]:
    for i in indexes:
        for disk in DISKS:
            yield name(i), disk, MIB, f"seed-{name(i)}-{disk}"


def _spec_json(vm: str) -> str:
    # What spec.VMSpec.model_dump_json writes for a VM of two blank 1 MiB disks.
    blank = {"image": None, "snapshot": None, "vm": None, "disk": None}
    disks = [
        {"name": d, "size": MIB, "driver": "local", "mode": "block", "source": blank} for d in DISKS
    ]
    return json.dumps(
        {"name": vm, "vcpus": 1, "memory_mib": 256, "disks": disks}, separators=(",", ":")
    )
