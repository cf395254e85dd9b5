"""NodeGetVolumeStats and NodeExpandVolume: questions about a staged or published path."""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import stat

from csi_vm import errors
from csi_vm.localdriver import (
    fault_switches,
    limits,
    lookup,
    model,
    nodeprep,
    nodestate,
    policy,
    requests,
)
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Usage:
    total: int
    available: int
    used: int


@dataclasses.dataclass(frozen=True)
class VolumeStats:
    bytes: Usage
    inodes: Usage | None  # None for block volumes
    condition: model.Condition


@dataclasses.dataclass(frozen=True)
class _Known:
    """A path the driver itself staged or published, with how it did it."""

    volume: model.Volume
    path: pathlib.Path
    cap: model.Capability
    device: str


def _known_path(ctx: Context, volume_id: str, volume_path: str) -> _Known:
    limits.require_id(volume_id, field="volume_id")
    if not volume_path:
        raise errors.InvalidInput("volume_path is required and must not be empty")
    node = ctx.config.node_id
    with ctx.db.read() as cur:
        # An unknown volume is NOT_FOUND whatever the path says.
        vol = lookup.volume(cur, volume_id)
        if not os.path.isabs(volume_path):
            # Stage and publish take absolute paths only, so no volume is at a
            # relative one: CSI's NOT_FOUND for "not at this volume_path".
            raise errors.NotFound(
                f"volume_path: volume {volume_id} is not staged or published at {volume_path!r}"
            )
        path = nodeprep.host_path(ctx, volume_path, "volume_path")
        target = nodestate.get_target(cur, node_id=node, path=str(path))
        staging = nodestate.get_staging(cur, volume_id=volume_id, node_id=node)
    if target and target.volume_id == volume_id:
        return _Known(vol, path, target.cap, target.device)
    if staging and staging.path == str(path):
        return _Known(vol, path, staging.cap, staging.device)
    raise errors.NotFound(f"volume_path: volume {volume_id} is not staged or published at {path}")


def _device_size(path: pathlib.Path) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def _condition(ctx: Context, known: _Known) -> model.Condition:
    image = ctx.images.volume_path(known.volume.volume_id)
    if not image.exists():
        return model.Condition(abnormal=True, message="the image file is missing")
    if known.device and known.device not in ctx.host.live_loops_backing(image):
        return model.Condition(abnormal=True, message=f"{known.device} no longer backs the volume")
    if not ctx.host.mounts_at(str(known.path)) and not (known.cap.block and known.path.is_file()):
        return model.Condition(abnormal=True, message=f"nothing is mounted at {known.path}")
    return model.Condition(abnormal=False, message="volume attached and mounted")


def stats(ctx: Context, *, volume_id: str, volume_path: str) -> VolumeStats:
    known = _known_path(ctx, volume_id, volume_path)
    try:
        mode = os.stat(known.path).st_mode
    except FileNotFoundError as err:
        raise errors.NotFound(f"volume_path {known.path} does not exist") from err
    condition = _condition(ctx, known)
    if stat.S_ISBLK(mode):
        size = _device_size(known.path)
        return VolumeStats(bytes=Usage(size, 0, 0), inodes=None, condition=condition)
    if known.cap.block:  # the bind mount is gone; report the image size
        size = known.volume.size
        return VolumeStats(bytes=Usage(size, 0, 0), inodes=None, condition=condition)
    st = os.statvfs(known.path)
    return VolumeStats(
        bytes=Usage(
            total=st.f_blocks * st.f_frsize,
            available=st.f_bavail * st.f_frsize,
            used=(st.f_blocks - st.f_bfree) * st.f_frsize,
        ),
        inodes=Usage(total=st.f_files, available=st.f_favail, used=st.f_files - st.f_ffree),
        condition=condition,
    )


def expand(ctx: Context, req: requests.NodeExpand) -> int:
    """Refresh the loop devices and grow the filesystem; returns the volume's size."""
    policy.require(ctx.config, Feature.EXPANSION, rpc="NodeExpandVolume")
    policy.fail_if_broken(ctx.config, Feature.EXPANSION, rpc="NodeExpandVolume")
    known = _known_path(ctx, req.volume_id, req.volume_path)
    image = ctx.images.volume_path(known.volume.volume_id)
    size = os.stat(image).st_size
    if not fault_switches.grows(ctx.config):
        return max(size, req.capacity.required if req.capacity else 0)
    if req.capacity and req.capacity.required > size:
        raise errors.OutOfRange(
            f"capacity_range: required_bytes {req.capacity.required} is more than the "
            f"volume's {size} bytes",
            hint="call ControllerExpandVolume first",
        )
    block = req.cap.block if req.cap else known.cap.block
    with nodeprep.node_locks(ctx, known.volume.volume_id), nodeprep.image_lock(image):
        for device in ctx.host.loops_backing(image):
            ctx.host.refresh_loop(device)
        if not block:
            _grow_filesystem(ctx, known)
    log.info("node-expanded %s to %d bytes", known.volume.volume_id, size)
    return size


def _grow_filesystem(ctx: Context, known: _Known) -> None:
    mounted = ctx.host.mounts_at(str(known.path))
    if not mounted:
        raise errors.NotFound(f"volume_path: nothing is mounted at {known.path}")
    nodeprep.grow_mounted(ctx, mounted[-1])
