"""A block target must always show its own volume's data.

A block target is a bind mount of the loop device node, which does not hold
the device: once the device is detached the kernel frees its number and the
next attach (of any image) takes it, so the target would show another
volume. The driver must never hand out a device that no longer backs the
volume's image or that the kernel is about to detach: a detach of a device
someone still holds open (a reader, a copy, qemu) only marks it to be torn
down at its last close.
"""

from __future__ import annotations

import os
import pathlib
import stat

import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.localdriver import kernel
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MiB = 1024 * 1024
BLOCK = csi.block_cap()


def _write(target: pathlib.Path, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(target: pathlib.Path, size: int) -> bytes:
    fd = os.open(target, os.O_RDONLY)
    try:
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _device_of(target: pathlib.Path) -> str:
    st = os.stat(target)
    assert stat.S_ISBLK(st.st_mode), f"{target} is not a block device"
    return f"/dev/loop{os.minor(st.st_rdev)}" if os.major(st.st_rdev) == 7 else ""


def _backing(device: str) -> str:
    """The file a loop device reads, '' when it is detached (sysfs)."""
    path = pathlib.Path("/sys/block", pathlib.Path(device).name, "loop", "backing_file")
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _image(driver: driverproc.DriverProcess, volume_id: str) -> str:
    """The volume's image in the driver's state dir, found by its name."""
    found = [p for p in driver.state_dir.rglob(f"*{volume_id}*") if p.is_file()]
    assert len(found) == 1, found
    return os.path.realpath(found[0])


class _Volumes:
    def __init__(self, stubs: csi.Stubs, paths: pathlib.Path) -> None:
        self.stubs, self.paths = stubs, paths

    def create(self, name: str) -> str:
        return csi.create_volume(self.stubs, name, size=MiB, cap=BLOCK).volume_id

    def stage(self, volume_id: str) -> str:
        staging = self.paths / f"staging-{volume_id}"
        staging.mkdir(exist_ok=True)
        self.stubs.node.NodeStageVolume(
            pb.NodeStageVolumeRequest(
                volume_id=volume_id, staging_target_path=str(staging), volume_capability=BLOCK
            ),
            timeout=csi.TIMEOUT_S,
        )
        return str(staging)

    def publish(self, volume_id: str, staging: str, name: str) -> pathlib.Path:
        target = self.paths / name
        self.stubs.node.NodePublishVolume(
            pb.NodePublishVolumeRequest(
                volume_id=volume_id,
                staging_target_path=staging,
                target_path=str(target),
                volume_capability=BLOCK,
            ),
            timeout=csi.TIMEOUT_S,
        )
        return target

    def down(self, volume_id: str, staging: str, target: pathlib.Path) -> None:
        csi.unpublish_and_unstage(self.stubs, volume_id, staging=staging, target=str(target))


def _assert_shows(driver: driverproc.DriverProcess, target: pathlib.Path, volume_id: str) -> None:
    device = _device_of(target)
    assert _backing(device) == _image(driver, volume_id), f"{target} binds {device}"


def test_a_device_being_detached_is_not_handed_out_again(
    driver: driverproc.DriverProcess, stubs: csi.Stubs, paths: pathlib.Path
) -> None:
    """Unpublish while a reader still holds the device, publish again at once: the
    new target must not get the device the kernel tears down at that reader's close."""
    vols = _Volumes(stubs, paths)
    a, b = vols.create("reuse-a"), vols.create("reuse-b")
    staging = vols.stage(a)
    first = vols.publish(a, staging, "a-1")
    _write(first, b"A" * 4096)
    # Someone still reading the device node itself (a probe, a copy, qemu).
    reader = os.open(_device_of(first), os.O_RDONLY)
    try:
        vols.down(a, staging, first)
        staging = vols.stage(a)
        second = vols.publish(a, staging, "a-2")
    finally:
        os.close(reader)
    staging_b = vols.stage(b)
    target_b = vols.publish(b, staging_b, "b-1")
    _write(target_b, b"B" * 4096)

    _assert_shows(driver, second, a)
    assert _device_of(second) != _device_of(target_b)
    assert _read(second, 4096) == b"A" * 4096
    vols.down(b, staging_b, target_b)
    vols.down(a, staging, second)


def test_a_staged_device_detached_by_someone_else_is_attached_again(
    driver: driverproc.DriverProcess, stubs: csi.Stubs, paths: pathlib.Path
) -> None:
    """An operator's `losetup -d` of a staged block volume's device: publish must
    attach the image again, never bind the recorded device name, which the next
    attach (of any image) may take."""
    vols = _Volumes(stubs, paths)
    a, b = vols.create("lost-a"), vols.create("lost-b")
    staging = vols.stage(a)
    first = vols.publish(a, staging, "a-1")
    _write(first, b"A" * 4096)
    lost = _device_of(first)
    stubs.node.NodeUnpublishVolume(
        pb.NodeUnpublishVolumeRequest(volume_id=a, target_path=str(first)), timeout=csi.TIMEOUT_S
    )
    kernel.loop_detach(lost)  # still staged: the driver's record names it
    assert _backing(lost) == ""
    staging_b = vols.stage(b)
    target_b = vols.publish(b, staging_b, "b-1")
    _write(target_b, b"B" * 4096)

    second = vols.publish(a, staging, "a-2")
    _assert_shows(driver, second, a)
    assert _read(second, 4096) == b"A" * 4096
    vols.down(a, staging, second)
    # Unstage released the device it attached again, and left B's alone.
    assert not any(_backing(f"/dev/{d.name}") == _image(driver, a) for d in _loops())
    _assert_shows(driver, target_b, b)
    vols.down(b, staging_b, target_b)


def test_a_target_whose_device_was_detached_is_bound_again(
    driver: driverproc.DriverProcess, stubs: csi.Stubs, paths: pathlib.Path
) -> None:
    """The CO repeats NodePublishVolume for a target whose device was detached from
    outside: the answer is a target showing the volume, not "already published"."""
    vols = _Volumes(stubs, paths)
    a, b = vols.create("rebind-a"), vols.create("rebind-b")
    staging = vols.stage(a)
    target = vols.publish(a, staging, "a-1")
    _write(target, b"A" * 4096)
    kernel.loop_detach(_device_of(target))
    staging_b = vols.stage(b)
    target_b = vols.publish(b, staging_b, "b-1")
    _write(target_b, b"B" * 4096)

    assert vols.publish(a, staging, "a-1") == target
    _assert_shows(driver, target, a)
    assert _read(target, 4096) == b"A" * 4096
    vols.down(a, staging, target)
    vols.down(b, staging_b, target_b)


def _loops() -> list[pathlib.Path]:
    return [p for p in pathlib.Path("/sys/block").iterdir() if p.name.startswith("loop")]
