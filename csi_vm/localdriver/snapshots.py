"""CreateSnapshot, DeleteSnapshot, GetSnapshot, ListSnapshots.

A snapshot is a read-only copy of the volume's image, cut while the volume is
quiesced (see `quiesce`), by reflink where the filesystem can and by sparse
copy elsewhere. It is ready to use as soon as CreateSnapshot returns.
Snapshots are independent of their source: deleting the volume keeps them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time

from csi_vm import errors
from csi_vm.localdriver import (
    catalog,
    extents,
    fault_switches,
    faults,
    limits,
    lookup,
    model,
    policy,
    quiesce,
)
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


def _existing(snap: model.Snapshot, source_volume_id: str) -> model.Snapshot:
    if snap.source_volume_id != source_volume_id:
        raise errors.AlreadyExists(
            f"snapshot named {snap.name!r} exists for another volume ({snap.source_volume_id})"
        )
    return snap


def create(
    ctx: Context, *, name: str, source_volume_id: str, parameters: dict[str, str]
) -> model.Snapshot:
    policy.require(ctx.config, Feature.SNAPSHOT, rpc="CreateSnapshot")
    limits.check_name(name, field="name")
    limits.require_id(source_volume_id, field="source_volume_id")
    policy.fail_if_broken(ctx.config, Feature.SNAPSHOT, rpc="CreateSnapshot")
    with ctx.locks.hold(
        exclusive=[f"snapshot-name:{name}"], shared=[f"volume:{source_volume_id}"], what=name
    ):
        with ctx.db.read() as cur:
            found = catalog.get_snapshot_by_name(cur, name)
            if found:
                return _existing(found, source_volume_id)
            vol = lookup.volume(cur, source_volume_id, field="source_volume_id")
        snap = model.Snapshot(
            snapshot_id=limits.new_id("snap"),
            name=name,
            source_volume_id=vol.volume_id,
            size=vol.size,
            created_ns=time.time_ns(),
            group_id=None,
            parameters=dict(parameters),
        )
        return _cut(ctx, snap)


def _cut(ctx: Context, snap: model.Snapshot) -> model.Snapshot:
    source = ctx.images.volume_path(snap.source_volume_id)
    with ctx.images.create(ctx.images.snapshot_path(snap.snapshot_id)) as image:
        src = open_image(source)
        try:
            check_room(ctx, [src])
            if fault_switches.cuts_snapshot(ctx.config):
                with quiesce.quiesced(ctx, [snap.source_volume_id]):
                    extents.copy_image(src, image.fd)
            else:
                os.ftruncate(image.fd, os.fstat(src).st_size)
        finally:
            os.close(src)
        ctx.hooks.reached("snapshot-temp")
        image.commit_file()
        ctx.hooks.reached("snapshot-renamed")
        try:
            with ctx.db.transaction() as cur:
                catalog.insert_snapshot(cur, snap)
        except sqlite3.IntegrityError:
            image.discard()  # a sibling process (--shared) committed this name first
            with ctx.db.read() as cur:
                winner = catalog.get_snapshot_by_name(cur, snap.name or "")
            if winner is None:
                raise
            return _existing(winner, snap.source_volume_id)
    log.info("created snapshot %s of %s", snap.snapshot_id, snap.source_volume_id)
    return snap


def open_image(path: os.PathLike[str]) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        raise faults.FailedPrecondition(
            f"the image file {os.fspath(path)!r} is missing from the state dir"
        ) from err


def check_room(ctx: Context, sources: list[int]) -> None:
    """CSI: RESOURCE_EXHAUSTED when the copies cannot fit (data blocks only: holes are free)."""
    needed = sum(os.fstat(fd).st_blocks * 512 for fd in sources)
    free = ctx.images.free_bytes()
    if needed > free:
        raise faults.ResourceExhausted(
            f"the snapshot needs {needed} bytes but only {free} are free in the state dir"
        )


def delete(ctx: Context, snapshot_id: str) -> None:
    policy.require(ctx.config, Feature.SNAPSHOT, rpc="DeleteSnapshot")
    limits.require_id(snapshot_id, field="snapshot_id")
    if not limits.is_known_shape(snapshot_id, kind="snap"):
        return
    with ctx.locks.hold(exclusive=[f"snapshot:{snapshot_id}"], what=f"snapshot {snapshot_id}"):
        with ctx.db.transaction() as cur:
            snap = catalog.get_snapshot(cur, snapshot_id)
            if snap is None:
                return
            if snap.group_id:
                raise errors.InvalidInput(
                    f"snapshot {snapshot_id} is part of group snapshot {snap.group_id}",
                    hint="delete it with DeleteVolumeGroupSnapshot",
                )
            catalog.delete_snapshot(cur, snapshot_id)
        ctx.images.remove(ctx.images.snapshot_path(snapshot_id))
    log.info("deleted snapshot %s", snapshot_id)


def get(ctx: Context, snapshot_id: str) -> model.Snapshot:
    policy.require(ctx.config, Feature.SNAPSHOT, rpc="GetSnapshot")
    with ctx.db.read() as cur:
        return lookup.snapshot(cur, snapshot_id)


def list_page(
    ctx: Context, *, token: str, max_entries: int, source_volume_id: str, snapshot_id: str
) -> model.Page[model.Snapshot]:
    policy.require(ctx.config, Feature.SNAPSHOT, rpc="ListSnapshots")
    if max_entries < 0:
        raise errors.InvalidInput("max_entries must not be negative")
    with ctx.db.read() as cur:
        if snapshot_id:  # CSI: a filter by id answers that one snapshot or nothing
            catalog.parse_token(cur, token, table="snapshots")
            known = limits.is_known_shape(snapshot_id, kind="snap")
            snap = catalog.get_snapshot(cur, snapshot_id) if known else None
            matches = snap and (not source_volume_id or snap.source_volume_id == source_volume_id)
            return model.Page((snap,) if snap and matches else (), "")
        return catalog.list_snapshots(
            cur, token=token, limit=max_entries, source_volume_id=source_volume_id
        )
