"""Block devices on the node, through pyudev: resolve, and wait until usable.

A CSI driver publishes a block volume by bind-mounting its device node onto a
file at the target path. `describe` resolves such a target (or any device
node) to the real device by its device number. `wait_for_block` waits until
the device is there and has a size, woken by uevents and re-checking on a
short tick, since a bind mount itself sends no event. Machines without udevd
(no systemd) still get the kernel's own uevents.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import stat
import time
from collections.abc import Callable

import pyudev

from csi_vm import errors

#: a device the driver just attached shows within a second; 30 s covers slow
#: storage networks (iSCSI logins) without hanging a start forever
DEFAULT_TIMEOUT_S = 30.0
#: re-check this often even without an event
_TICK_S = 0.1
_SECTOR = 512  # sysfs reports sizes in 512-byte units whatever the block size


@dataclasses.dataclass(frozen=True)
class BlockDevice:
    node: pathlib.Path  # the real device node, e.g. /dev/loop3
    sys_name: str  # its name in sysfs, e.g. loop3
    number: tuple[int, int]  # (major, minor)
    size_bytes: int


def _context() -> pyudev.Context:
    return pyudev.Context()


def describe(path: pathlib.Path) -> BlockDevice:
    """The block device at `path`: a device node or a published CSI block target."""
    try:
        info = os.stat(path)
    except FileNotFoundError as err:
        raise errors.NotFound(f"nothing at {path}") from err
    if not stat.S_ISBLK(info.st_mode):
        raise errors.NotFound(
            f"{path} is not a block device node",
            hint="a published block volume is a device node bind-mounted at the target path",
        )
    try:
        device = pyudev.Devices.from_device_number(_context(), "block", info.st_rdev)
    except pyudev.DeviceNotFoundError as err:
        raise errors.NotFound(f"{path}: no block device {_number(info.st_rdev)} in sysfs") from err
    sectors = int(device.attributes.get("size") or 0)
    return BlockDevice(
        node=pathlib.Path(device.device_node or f"/dev/{device.sys_name}"),
        sys_name=str(device.sys_name),
        number=(os.major(info.st_rdev), os.minor(info.st_rdev)),
        size_bytes=sectors * _SECTOR,
    )


def _number(rdev: int) -> str:
    return f"{os.major(rdev)}:{os.minor(rdev)}"


def _ready(path: pathlib.Path) -> BlockDevice | None:
    try:
        found = describe(path)
    except errors.NotFound:
        return None
    return found if found.size_bytes > 0 else None


def _monitor() -> pyudev.Monitor | None:
    """Block uevents from udevd when it runs, else straight from the kernel."""
    source = "udev" if pathlib.Path("/run/udev/control").exists() else "kernel"
    try:
        monitor = pyudev.Monitor.from_netlink(_context(), source=source)
        monitor.filter_by("block")
        monitor.start()
    except OSError:
        return None  # no netlink here (unprivileged container): the tick alone
    return monitor


def wait_for_block(
    path: pathlib.Path,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> BlockDevice:
    """Wait until `path` is a block device with a non-zero size; raise after `timeout`."""
    if found := _ready(path):
        return found
    deadline = clock() + timeout
    monitor = _monitor()
    while (left := deadline - clock()) > 0:
        if monitor is not None:
            monitor.poll(timeout=min(_TICK_S, left))
        else:
            time.sleep(min(_TICK_S, left))
        if found := _ready(path):
            return found
    raise errors.OperationFailed(
        f"block device {path} did not become ready within {timeout:g} s",
        hint="check that the CSI driver published the volume and that the device has a size",
    )
