"""Building blocks of the node RPCs: loop devices, filesystems, target paths.

Each volume has at most one read-write loop device, shared by every staging
and target that needs it (on any node, with --shared), so one filesystem is
never mounted through two devices at once. A read-only block target gets a
private read-only loop device. A device is detached once no row uses it.

Attach/detach decisions are serialised across driver processes by an flock
on the image file (`image_lock`), since sibling processes share the devices.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
import pathlib
from collections.abc import Iterator

from csi_vm import errors
from csi_vm.localdriver import faults, hostops, limits, model, nodestate, policy
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


def node_locks(ctx: Context, volume_id: str) -> contextlib.AbstractContextManager[None]:
    """Node RPCs on one volume exclude each other and DeleteVolume, not snapshots."""
    return ctx.locks.hold(
        shared=[f"volume:{volume_id}"], exclusive=[f"node:{volume_id}"], what=f"volume {volume_id}"
    )


def host_path(ctx: Context, value: str, field: str) -> pathlib.Path:
    return limits.check_host_path(value, field=field, state_dir=ctx.config.state_dir)


def capability(ctx: Context, cap: model.Capability | None, *, rpc: str) -> model.Capability:
    if cap is None:
        raise errors.InvalidInput("volume_capability is required")
    policy.check_capability(cap, ctx.config, field="volume_capability")
    if cap.block:
        policy.fail_if_broken(ctx.config, Feature.BLOCK, rpc=f"{rpc} (block)")
    return cap


def check_access(vol: model.Volume, cap: model.Capability) -> None:
    """CSI "exceeds capabilities": a block-only volume is never mounted (that would
    format it and destroy its data), nor a filesystem volume used raw."""
    if not vol.allows(cap):
        wanted = "block" if cap.block else "mount"
        raise faults.FailedPrecondition(
            f"volume_capability: {wanted} access to volume {vol.volume_id}, which was "
            f"created for {' and '.join(vol.access_types)} access only"
        )


def check_reachable(ctx: Context, vol: model.Volume) -> None:
    """A volume pinned to another node is not there to stage or publish (--pin-volumes)."""
    if vol.pinned_node and vol.pinned_node != ctx.config.node_id:
        raise errors.NotFound(
            f"volume {vol.volume_id} lives on node {vol.pinned_node!r}, "
            f"not reachable from {ctx.config.node_id!r}"
        )


@contextlib.contextmanager
def image_lock(image: pathlib.Path, *, missing_ok: bool = False) -> Iterator[None]:
    """Cross-process mutex for attach/detach decisions on one image."""
    try:
        fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as err:
        if missing_ok:  # tear-down still works on a volume whose image vanished
            yield
            return
        raise faults.FailedPrecondition(
            f"the image file {image.name} is missing from the state dir"
        ) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def shared_device(ctx: Context, image: pathlib.Path) -> str:
    """The volume's read-write loop device, attached now if there is none.

    Only a device that backs the image now and is not being detached will do:
    a block target binds the device node without holding it open.
    """
    for device in ctx.host.live_loops_backing(image):
        if not ctx.host.loop_is_read_only(device):
            return device
    return ctx.host.attach_loop(image, read_only=False)


def staged_device(ctx: Context, staging: nodestate.Staging, image: pathlib.Path) -> str:
    """The loop device of a staging, attached again if it was lost.

    A block staging records its device but holds nothing open, so a detach
    from outside (`losetup -d`) frees the number for the next attach of any
    image; binding the recorded name would then publish another volume.
    """
    if not staging.cap.block:
        return staging.device  # the mounted filesystem holds its device open
    device = shared_device(ctx, image)
    if device != staging.device:
        log.warning(
            "%s no longer backs volume %s: staged on %s now",
            staging.device,
            staging.volume_id,
            device,
        )
        with ctx.db.transaction() as cur:  # unstage releases the device in use
            nodestate.add_staging(cur, dataclasses.replace(staging, device=device))
    return device


def release_device(ctx: Context, *, volume_id: str, device: str) -> None:
    """Detach a loop device no staging or target uses any more."""
    if not device:
        return
    with ctx.db.read() as cur:
        if nodestate.device_in_use(cur, volume_id=volume_id, device=device):
            return
    # The recorded name may belong to another image now (after a reboot, or a
    # detach from outside): the check is made on the device held open.
    ctx.host.detach_loop(device, image=ctx.images.volume_path(volume_id))


def ensure_filesystem(ctx: Context, *, device: str, wanted: str, size: int) -> str:
    """The filesystem on the device, made now (once) if the device holds none."""
    found = ctx.host.probe(device)
    current = found.get("TYPE", "")
    if current:
        if wanted and current != wanted:
            raise faults.FailedPrecondition(
                f"volume_capability: fs_type {wanted!r} requested but the volume holds {current}"
            )
        if current not in limits.SUPPORTED_FS_TYPES:
            raise faults.FailedPrecondition(f"the volume holds an unsupported {current}")
        return current
    if found.get("PTTYPE"):
        raise faults.FailedPrecondition(
            "the volume holds a partition table (a disk image?) and no filesystem; "
            "refusing to format it"
        )
    fs_type = wanted or limits.SUPPORTED_FS_TYPES[0]
    if fs_type == "xfs" and size < limits.MINIMUM_XFS_BYTES:
        raise faults.FailedPrecondition("the volume is too small for xfs (300 MiB at least)")
    ctx.host.make_fs(device, fs_type)
    return fs_type


def mount_options(cap: model.Capability, *, fs_type: str, read_only: bool) -> list[str]:
    options = list(cap.mount_flags)
    if read_only:
        options.append("ro")
    if fs_type == "xfs":
        options.append("nouuid")  # clones share their source's xfs UUID
    return options


def mount_device(
    ctx: Context,
    *,
    device: str,
    path: pathlib.Path,
    cap: model.Capability,
    read_only: bool,
    size: int,
) -> None:
    """Mount the volume's filesystem at path (idempotent); grow it to the device's size."""
    mounted = ctx.host.mounts_at(str(path))
    if mounted:
        if mounted[-1].source != device:
            raise faults.FailedPrecondition(f"{path} already has something else mounted on it")
        return
    fs_type = ensure_filesystem(ctx, device=device, wanted=cap.fs_type, size=size)
    prepare_dir(path)
    first_mount = not ctx.host.mounts_of(device)
    # A volume expanded offline, or cloned or restored into a larger size, gets
    # its filesystem grown before any workload sees it (CSI asks for that).
    if first_mount and fs_type == "ext4" and not read_only:
        _grow_ext4_unmounted(ctx, device)
    options = mount_options(cap, fs_type=fs_type, read_only=read_only)
    ctx.host.mount(device, str(path), fs_type=fs_type, options=options)
    if first_mount and fs_type == "xfs" and not read_only:
        ctx.host.grow_fs(device=device, mountpoint=str(path), fs_type=fs_type)


def _grow_ext4_unmounted(ctx: Context, device: str) -> None:
    # Offline growth works without CAP_SYS_RESOURCE, which online ext4 growth needs.
    if ctx.host.ext4_bytes(device) < ctx.host.device_bytes(device):
        ctx.host.grow_ext4_offline(device)


def grow_mounted(ctx: Context, entry: hostops.MountEntry) -> None:
    """Grow a mounted filesystem in place (NodeExpandVolume)."""
    if entry.fs_type == "ext4":
        if ctx.host.ext4_bytes(entry.source) >= ctx.host.device_bytes(entry.source):
            return  # already as large as its device
        if not ctx.host.can_resize_ext4_online():
            raise faults.FailedPrecondition(
                "growing a mounted ext4 needs CAP_SYS_RESOURCE, which this host withholds",
                hint="unstage and stage the volume again: it is grown before mounting",
            )
    ctx.host.grow_fs(device=entry.source, mountpoint=entry.mountpoint, fs_type=entry.fs_type)


def prepare_dir(path: pathlib.Path) -> None:
    if path.exists() and not path.is_dir():
        raise faults.FailedPrecondition(f"{path} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)


def prepare_file(path: pathlib.Path) -> None:
    """A block target is a file the device node is bind-mounted onto."""
    if path.is_dir():
        if any(path.iterdir()):
            raise faults.FailedPrecondition(f"{path} is a non-empty directory")
        path.rmdir()  # some COs pre-create the target as a directory
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)


def remove_target_path(path: pathlib.Path) -> None:
    """CSI: the SP deletes the file or directory it created at target_path."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir():
            with contextlib.suppress(OSError):  # a non-empty dir is not ours to delete
                path.rmdir()
        else:
            path.unlink()


def is_mounted_from(host: hostops.Host, path: pathlib.Path, device: str) -> bool:
    entries = host.mounts_at(str(path))
    return bool(entries) and entries[-1].source == device
