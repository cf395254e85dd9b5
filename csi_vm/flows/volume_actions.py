"""Journaled actions on CSI volumes: create, expand, snapshot, publish, copy; each with its undo.

`journal_actions` registers them by name, next to the actions on running VMs.

Every action is idempotent, and so is every undo: a step may be replayed
after a crash whether or not it had run. Creates are found again by their
flow-unique name (CSI creates are idempotent by name).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import stat
import time
from typing import Any

from capabilities import model
from csi_vm import diskfile, errors, spec
from csi_vm.csi import models
from csi_vm.flows import context, devcheck, diskio

log = logging.getLogger("csi_vm.flows")

Data = dict[str, Any]

_READY_WITHIN = 300.0  # seconds for a snapshot to become ready to use
_STAGE = model.Feature.STAGE_UNSTAGE


def capability(mode: str) -> models.VolumeCapability:
    if mode == spec.Mode.BLOCK:
        return models.VolumeCapability(
            mode=models.VolumeMode.BLOCK, access=models.AccessMode.SINGLE_NODE_WRITER
        )
    return models.VolumeCapability(
        mode=models.VolumeMode.FILESYSTEM,
        access=models.AccessMode.SINGLE_NODE_WRITER,
        fs_type="ext4",
    )


def volume_size(size: int, mode: str) -> int:
    """The CSI volume size that holds a disk of `size` bytes in this mode."""
    if mode == spec.Mode.BLOCK:
        return size
    # ext4 metadata (inode tables, journal) takes a few percent, and more of a
    # small filesystem: 1/16 of the disk, at least 16 MiB, rounded to MiB.
    mib = 1024 * 1024
    overhead = max(size // 16, 16 * mib)
    return -(-(size + overhead) // mib) * mib


# -- volumes ------------------------------------------------------------------


def _create_volume(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    source: models.ContentSource | None = None
    if data.get("source_volume_id"):
        source = models.VolumeSource(volume_id=data["source_volume_id"])
    elif data.get("source_snapshot_id"):
        source = models.SnapshotSource(snapshot_id=data["source_snapshot_id"])
    vol = env.controller(data["driver"]).create_volume(
        data["name"],
        size=volume_size(data["size"], data["mode"]),
        capabilities=(capability(data["mode"]),),
        source=source,
    )
    return {"volume_id": vol.volume_id, "capacity": vol.capacity_bytes}


def _undo_create_volume(env: context.Env, data: Data) -> None:
    volume_id = data.get("volume_id")
    if not volume_id:
        try:
            volume_id = _create_volume(env, data, "", 0)["volume_id"]
        except (errors.NotFound, errors.Rejected, errors.Unsupported):
            return  # its source is gone or it was refused: it never existed
    _ignore_missing(lambda: env.controller(data["driver"]).delete_volume(volume_id))


def _delete_volume(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    _ignore_missing(lambda: env.controller(data["driver"]).delete_volume(data["volume_id"]))
    return {}


def _expand_volume(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    size = volume_size(data["size"], data["mode"])
    result = env.controller(data["driver"]).expand_volume(
        data["volume_id"], size=size, capability=capability(data["mode"])
    )
    return {"capacity": result.capacity_bytes, "node_expansion": result.node_expansion_required}


# -- snapshots ----------------------------------------------------------------


def _create_snapshot(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    client = env.controller(data["driver"])
    snap = client.create_snapshot(data["source_volume_id"], name=data["name"])
    snap = _wait_ready(client, snap)
    return {"snapshot_id": snap.snapshot_id, "snapshot_size": snap.size_bytes}


def _wait_ready(client: Any, snap: models.Snapshot) -> models.Snapshot:
    deadline = time.monotonic() + _READY_WITHIN
    delay = 0.02
    while not snap.ready_to_use:
        if time.monotonic() > deadline:
            raise errors.OperationFailed(
                f"snapshot {snap.snapshot_id} was not ready after {_READY_WITHIN:.0f} s"
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
        found = [s for s in client.list_snapshots(snapshot_id=snap.snapshot_id)]
        if not found:
            raise errors.OperationFailed(
                f"snapshot {snap.snapshot_id} disappeared while being made"
            )
        snap = found[0]
    return snap


def _undo_create_snapshot(env: context.Env, data: Data) -> None:
    snapshot_id = data.get("snapshot_id")
    client = env.controller(data["driver"])
    if not snapshot_id:
        try:
            snapshot_id = client.create_snapshot(
                data["source_volume_id"], name=data["name"]
            ).snapshot_id
        except (errors.NotFound, errors.Rejected, errors.Unsupported):
            return
    _ignore_missing(lambda: client.delete_snapshot(snapshot_id))


def _delete_snapshot(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    _ignore_missing(lambda: env.controller(data["driver"]).delete_snapshot(data["snapshot_id"]))
    return {}


def _create_group(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    client = env.controller(data["driver"])
    group = client.create_group_snapshot(tuple(data["volume_ids"]), name=data["name"])
    deadline = time.monotonic() + _READY_WITHIN
    while not group.ready_to_use and time.monotonic() < deadline:
        time.sleep(0.05)
        group = client.get_group_snapshot(
            group.group_snapshot_id, snapshot_ids=tuple(s.snapshot_id for s in group.snapshots)
        )
    if not group.ready_to_use:
        raise errors.OperationFailed(f"group snapshot {group.group_snapshot_id} never became ready")
    by_source = {s.source_volume_id: s.snapshot_id for s in group.snapshots}
    return {"group_id": group.group_snapshot_id, "snapshot_ids": by_source}


def _undo_create_group(env: context.Env, data: Data) -> None:
    client = env.controller(data["driver"])
    group_id = data.get("group_id")
    snapshot_ids = tuple(data.get("snapshot_ids", {}).values())
    if not group_id:
        try:
            group = client.create_group_snapshot(tuple(data["volume_ids"]), name=data["name"])
        except (errors.NotFound, errors.Rejected, errors.Unsupported):
            return
        group_id, snapshot_ids = (
            group.group_snapshot_id,
            tuple(s.snapshot_id for s in group.snapshots),
        )
    _ignore_missing(lambda: client.delete_group_snapshot(group_id, snapshot_ids=snapshot_ids))


def _delete_group(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    client = env.controller(data["driver"])
    ids = tuple(data["snapshot_ids"])
    _ignore_missing(lambda: client.delete_group_snapshot(data["group_id"], snapshot_ids=ids))
    return {}


# -- attach on this node ------------------------------------------------------


def _attach(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    base = pathlib.Path(data["base"])
    # "node": a VM's node other than this one (online operations attach there)
    node = env.node_service(data["driver"], node=data.get("node", ""))
    cap = capability(data["mode"])
    staging, target = base / "staging", base / "target"
    staging.mkdir(parents=True, exist_ok=True)
    if data["mode"] == spec.Mode.FILESYSTEM:
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.touch(exist_ok=True)
    staged = ""
    stages = env.may_call(data["driver"], _STAGE)
    # Drivers without STAGE_UNSTAGE publish directly.
    if stages:
        with contextlib.suppress(errors.Unsupported):
            node.node_stage(data["volume_id"], staging_path=str(staging), capability=cap)
            staged = str(staging)
    try:
        node.node_publish(
            data["volume_id"], target_path=str(target), capability=cap, staging_path=staged
        )
    except errors.Rejected as err:
        if stages:
            raise
        raise type(err)(
            f"{err.message} (driver {data['driver']!r} serves NodeStageVolume but does not "
            "declare STAGE_UNSTAGE_VOLUME, so it was not called)",
            hint="if the driver needs it, add stage_unstage to its assert: list in the config",
        ) from err
    return {"staging": staged, "target": str(target)}


def _detach(env: context.Env, data: Data, flow_id: str = "", seq: int = 0) -> Data:
    """Unpublish and unstage; both are idempotent, and absent staging is fine."""
    node = env.node_service(data["driver"], node=data.get("node", ""))
    base = pathlib.Path(data["base"])
    volume_id = data["volume_id"]
    _ignore_missing(lambda: node.node_unpublish(volume_id, target_path=str(base / "target")))
    staging = str(base / "staging")
    if env.may_call(data["driver"], _STAGE):
        with contextlib.suppress(errors.Unsupported):
            _ignore_missing(lambda: node.node_unstage(volume_id, staging_path=staging))
    for leftover in (base / "target", base / "staging"):
        if leftover.is_dir():
            leftover.rmdir()
        else:
            leftover.unlink(missing_ok=True)
    return {}


def _undo_attach(env: context.Env, data: Data) -> None:
    _detach(env, data)


# -- data ---------------------------------------------------------------------


def disk_path(target: str, mode: str) -> str:
    """Where a disk's bytes are on an attached volume."""
    if mode == spec.Mode.BLOCK:
        return target
    return str(pathlib.Path(target) / diskfile.IMAGE_NAME)


def _make_image(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    """Create (or grow) the sparse disk image on a filesystem-mode volume."""
    path = disk_path(data["target"], spec.Mode.FILESYSTEM)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < data["size"]:
            os.ftruncate(fd, data["size"])
        os.fsync(fd)
    finally:
        os.close(fd)
    return {}


def require_attached(path: str) -> None:
    """Refuse to write unless `path` is still the attached volume.

    A block target is the volume's device node bind-mounted onto a file, a
    filesystem disk is a file on the volume's mount. If the node or mount
    vanished after the attach, the copy would create a plain host file there,
    report success and leave the volume empty.
    """
    target = pathlib.Path(path)
    try:
        block = stat.S_ISBLK(target.stat().st_mode)
    except FileNotFoundError:
        block = False
    if block or os.path.ismount(target.parent):
        return
    raise errors.OperationFailed(
        f"{path} is no longer the attached volume: its device node or mount is gone",
        hint="something unmounted or removed it while csi-vm ran; the flow rolls back",
    )


def _ends(data: Data, **roles: str) -> dict[str, tuple[str, int]]:
    """The copy's ends to check, by role; none for steps journaled without sizes."""
    sizes = {"source": data.get("src_size", 0), "target": data.get("size", 0)}
    return {role: (data[key], sizes[role]) for role, key in roles.items() if sizes[role]}


def _copy(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    require_attached(data["dst"])
    what = data.get("what", "copy")
    with devcheck.checked_copy(what=what, ends=_ends(data, source="src", target="dst")):
        copied = diskio.copy(
            data["src"], data["dst"], what=what, progress=env.progress,
            verify=data.get("verify", False),
        )  # fmt: skip
    return {"bytes": copied}


def _import(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    require_attached(data["dst"])
    what = data.get("what", f"import {data['image']}")
    with devcheck.checked_copy(what=what, ends=_ends(data, target="dst")):
        copied = diskio.import_image(
            data["image"], data["dst"], size=data["size"], progress=env.progress
        )
    return {"bytes": copied}


def _export(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    what = data.get("what", f"export {data['file']}")
    ends = {"source": (data["src"], data["size"])} if data.get("size") else {}
    with devcheck.checked_copy(what=what, ends=ends):
        diskio.export_image(data["src"], data["file"], fmt=data["format"], progress=env.progress)
    return {}


def _ignore_missing(call: Any) -> None:
    with contextlib.suppress(errors.NotFound):
        call()


DO = {
    "create_volume": _create_volume,
    "delete_volume": _delete_volume,
    "expand_volume": _expand_volume,
    "create_snapshot": _create_snapshot,
    "delete_snapshot": _delete_snapshot,
    "create_group_snapshot": _create_group,
    "delete_group_snapshot": _delete_group,
    "attach": _attach,
    "detach": _detach,
    "make_image": _make_image,
    "copy": _copy,
    "import": _import,
    "export": _export,
}

UNDO = {
    "create_volume": _undo_create_volume,
    "create_snapshot": _undo_create_snapshot,
    "create_group_snapshot": _undo_create_group,
    "attach": _undo_attach,
}
