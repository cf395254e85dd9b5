"""Make the images of volumes in use consistent before they are copied.

A volume attached to a loop device may have writes in flight: dirty pages of
the loop block device, and dirty data of a filesystem mounted on it. Before a
snapshot or clone reads the image, each loop device is fsynced (which also
flushes the loop driver into the image file) and each mounted filesystem is
frozen until the copy is done, so all copies taken together are one point in
time. Volumes the driver has not staged or published (the common case) cost one query.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence

from csi_vm.localdriver import nodestate
from csi_vm.localdriver.context import Context

log = logging.getLogger(__name__)


def _flush_device(device: str) -> None:
    fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mounted_filesystems(ctx: Context, volume_ids: Sequence[str]) -> list[str]:
    """One mount point per mounted filesystem of these volumes (freezing twice fails)."""
    with ctx.db.read() as cur:
        paths = [
            s.path for v in volume_ids for s in nodestate.stagings_of(cur, v) if not s.cap.block
        ]
        paths += [
            t.path
            for v in volume_ids
            for t in nodestate.targets_of(cur, volume_id=v, node_id=None)
            if not t.cap.block
        ]
    chosen: dict[str, str] = {}
    for path in paths:
        for entry in ctx.host.mounts_at(path)[-1:]:
            chosen.setdefault(entry.device, path)
    return list(chosen.values())


@contextlib.contextmanager
def quiesced(ctx: Context, volume_ids: Sequence[str]) -> Iterator[None]:
    with ctx.db.read() as cur:  # only volumes the driver staged or published can be busy
        in_use = [v for v in volume_ids if nodestate.users(cur, v)]
    devices = [d for v in in_use for d in ctx.host.loops_backing(ctx.images.volume_path(v))]
    if not devices:
        yield
        return
    for device in devices:
        _flush_device(device)
    frozen: list[str] = []
    try:
        for mountpoint in _mounted_filesystems(ctx, in_use):
            ctx.host.freeze(mountpoint)
            frozen.append(mountpoint)
        yield
    finally:
        for mountpoint in reversed(frozen):
            ctx.host.thaw(mountpoint)
