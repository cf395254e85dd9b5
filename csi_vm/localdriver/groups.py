"""Volume group snapshots: several volumes cut at one point in time.

All member volumes are quiesced together (loop devices flushed, filesystems
frozen) for the whole copy, which gives CSI's write-order consistency. The
member images are committed with the group's row in one transaction, so a
crash leaves either the whole group or nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time

from csi_vm import errors
from csi_vm.localdriver import (
    extents,
    groupstate,
    limits,
    lookup,
    model,
    policy,
    quiesce,
    requests,
)
from csi_vm.localdriver import snapshots as snapshot_ops
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


def _check_request(ctx: Context, req: requests.CreateGroup) -> tuple[str, ...]:
    policy.require(ctx.config, Feature.GROUP_SNAPSHOT, rpc="CreateVolumeGroupSnapshot")
    limits.check_name(req.name, field="name")
    if not req.source_volume_ids:
        raise errors.InvalidInput("source_volume_ids is required and must not be empty")
    for index, volume_id in enumerate(req.source_volume_ids):
        limits.require_id(volume_id, field=f"source_volume_ids[{index}]")
    if len(set(req.source_volume_ids)) != len(req.source_volume_ids):
        raise errors.InvalidInput("source_volume_ids lists a volume more than once")
    policy.fail_if_broken(ctx.config, Feature.GROUP_SNAPSHOT, rpc="CreateVolumeGroupSnapshot")
    return tuple(sorted(req.source_volume_ids))


def _existing(group: model.GroupSnapshot, req: requests.CreateGroup) -> model.GroupSnapshot:
    if group.source_volume_ids != tuple(sorted(req.source_volume_ids)):
        raise errors.AlreadyExists(f"group snapshot {req.name!r} exists for other volumes")
    if group.parameters != req.parameters:
        raise errors.AlreadyExists(f"group snapshot {req.name!r} exists with other parameters")
    return group


def create(ctx: Context, req: requests.CreateGroup) -> model.GroupSnapshot:
    sources = _check_request(ctx, req)
    with ctx.locks.hold(
        exclusive=[f"group-name:{req.name}"],
        shared=[f"volume:{v}" for v in sources],
        what=req.name,
    ):
        with ctx.db.read() as cur:
            found = groupstate.get_group_by_name(cur, req.name)
            if found:
                return _existing(found, req)
            volumes = [lookup.volume(cur, v, field="source_volume_ids") for v in sources]
        return _cut(ctx, req, volumes)


def _member(vol: model.Volume, *, group_id: str, created_ns: int) -> model.Snapshot:
    return model.Snapshot(
        snapshot_id=limits.new_id("snap"),
        name=None,
        source_volume_id=vol.volume_id,
        size=vol.size,
        created_ns=created_ns,
        group_id=group_id,
        parameters={},
    )


def _cut(
    ctx: Context, req: requests.CreateGroup, volumes: list[model.Volume]
) -> model.GroupSnapshot:
    group_id, now = limits.new_id("group"), time.time_ns()
    members = tuple(_member(v, group_id=group_id, created_ns=now) for v in volumes)
    group = model.GroupSnapshot(
        group_id=group_id,
        name=req.name,
        source_volume_ids=tuple(v.volume_id for v in volumes),
        created_ns=now,
        parameters=dict(req.parameters),
        members=members,
    )
    with contextlib.ExitStack() as stack:
        paths = [ctx.images.snapshot_path(m.snapshot_id) for m in members]
        files = [stack.enter_context(ctx.images.create(p)) for p in paths]
        _copy_all(ctx, group, [f.fd for f in files])
        for image in files:
            image.commit_file()
        try:
            with ctx.db.transaction() as cur:
                groupstate.insert_group(cur, group)
        except sqlite3.IntegrityError:
            for image in files:
                image.discard()  # a sibling process (--shared) won the name
            with ctx.db.read() as cur:
                winner = groupstate.get_group_by_name(cur, req.name)
            if winner is None:
                raise
            return _existing(winner, req)
    log.info("created group snapshot %s of %d volumes", group_id, len(members))
    return group


def _copy_all(ctx: Context, group: model.GroupSnapshot, targets: list[int]) -> None:
    sources = []
    try:
        for vol_id in group.source_volume_ids:
            sources.append(snapshot_ops.open_image(ctx.images.volume_path(vol_id)))
        snapshot_ops.check_room(ctx, sources)
        with quiesce.quiesced(ctx, group.source_volume_ids):
            for src, dst in zip(sources, targets, strict=True):
                extents.copy_image(src, dst)
    finally:
        for fd in sources:
            os.close(fd)


def _check_members(group: model.GroupSnapshot, snapshot_ids: tuple[str, ...]) -> None:
    if not snapshot_ids:
        raise errors.InvalidInput("snapshot_ids is required and must not be empty")
    if set(snapshot_ids) != {m.snapshot_id for m in group.members}:
        raise errors.InvalidInput(
            f"snapshot_ids do not match the members of group snapshot {group.group_id}"
        )


def delete(ctx: Context, group_id: str, snapshot_ids: tuple[str, ...]) -> None:
    policy.require(ctx.config, Feature.GROUP_SNAPSHOT, rpc="DeleteVolumeGroupSnapshot")
    limits.require_id(group_id, field="group_snapshot_id")
    # A group that is gone is deleted, whatever the list says: an empty
    # snapshot_ids is refused (_check_members) only for a group that exists.
    if not limits.is_known_shape(group_id, kind="group"):
        return
    with ctx.locks.hold(exclusive=[f"group:{group_id}"], what=f"group snapshot {group_id}"):
        with ctx.db.transaction() as cur:
            group = groupstate.get_group(cur, group_id)
            if group is None:
                return
            _check_members(group, snapshot_ids)
            groupstate.delete_group(cur, group_id)
        for member in group.members:
            ctx.images.remove(ctx.images.snapshot_path(member.snapshot_id))
    log.info("deleted group snapshot %s", group_id)


def get(ctx: Context, group_id: str, snapshot_ids: tuple[str, ...]) -> model.GroupSnapshot:
    policy.require(ctx.config, Feature.GROUP_SNAPSHOT, rpc="GetVolumeGroupSnapshot")
    with ctx.db.read() as cur:
        group = lookup.group(cur, group_id)
    _check_members(group, snapshot_ids)
    return group
