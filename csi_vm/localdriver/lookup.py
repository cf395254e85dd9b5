"""Find an object by id or fail with NOT_FOUND, the same way in every RPC."""

from __future__ import annotations

import sqlite3

from csi_vm import errors
from csi_vm.localdriver import catalog, groupstate, limits, model


def volume(cur: sqlite3.Cursor, volume_id: str, *, field: str = "volume_id") -> model.Volume:
    limits.require_id(volume_id, field=field)
    found = (
        catalog.get_volume(cur, volume_id) if limits.is_known_shape(volume_id, kind="vol") else None
    )
    if found is None:
        raise errors.NotFound(f"{field}: volume {volume_id!r} does not exist")
    return found


def snapshot(
    cur: sqlite3.Cursor, snapshot_id: str, *, field: str = "snapshot_id"
) -> model.Snapshot:
    limits.require_id(snapshot_id, field=field)
    known = limits.is_known_shape(snapshot_id, kind="snap")
    found = catalog.get_snapshot(cur, snapshot_id) if known else None
    if found is None:
        raise errors.NotFound(f"{field}: snapshot {snapshot_id!r} does not exist")
    return found


def group(
    cur: sqlite3.Cursor, group_id: str, *, field: str = "group_snapshot_id"
) -> model.GroupSnapshot:
    limits.require_id(group_id, field=field)
    found = (
        groupstate.get_group(cur, group_id)
        if limits.is_known_shape(group_id, kind="group")
        else None
    )
    if found is None:
        raise errors.NotFound(f"{field}: group snapshot {group_id!r} does not exist")
    return found
