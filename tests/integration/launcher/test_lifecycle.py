"""The counter guest on a CSI block volume, started and stopped through launcher.node."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import signal
import time

import pytest

from csi_vm import diskfile, errors
from csi_vm.csi import models
from launcher import counter, domain, node

from .conftest import BOOT_LIMIT_S, Lab, backing_file, loops_backing, mounts_under, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(180)]


def test_counter_guest_runs_on_a_block_volume_and_stop_undoes_everything(
    lab: Lab, record_property: pytest.RecordProperty
) -> None:
    volume_id = lab.block_volume("counter-disk")
    vm = lab.counter_vm("csi-vm-test-counter", volume_id)

    began = time.monotonic()
    status = lab.node.start(vm)
    assert status.running and status.problem is None
    device = lab.published_device(vm.name)
    first = wait_for_counter(device, above=0, within=BOOT_LIMIT_S)
    boot_s = time.monotonic() - began
    record_property("boot_s", round(boot_s, 2))
    print(f"counter guest booted in {boot_s:.1f} s")

    later = wait_for_counter(device, above=first + 3, within=10)
    record = counter.read_record(device)
    assert record is not None and record.value >= later
    assert record.disk_sectors * 512 == 64 << 20  # the guest sees the whole volume
    assert f"CSIVMCTR {first}" in lab.node.console_log(vm.name).read_text()

    image = backing_file(device)
    report = lab.node.stop(vm.name, grace_s=0)
    assert report.before.running and report.disks == (volume_id,)

    assert not lab.conn.exists(vm.name)
    assert volume_id in {e.volume.volume_id for e in lab.csi.list_volumes()}
    assert loops_backing(image) == []
    assert mounts_under(lab.node.vm_dir(vm.name)) == []
    with pytest.raises(errors.NotFound):
        lab.node.status(vm.name)
    # Every acknowledged value reached the volume's image, not just a cache.
    assert counter.read_counter(image) >= record.value


def test_a_graceful_stop_powers_the_guest_off_without_losing_a_write(lab: Lab) -> None:
    """libvirt's shutdown presses the ACPI power button; the guest powers off by itself."""
    volume_id = lab.block_volume("graceful-disk")
    vm = lab.counter_vm("csi-vm-test-graceful", volume_id)
    lab.node.start(vm)
    device = lab.published_device(vm.name)
    wait_for_counter(device, above=2, within=BOOT_LIMIT_S)
    image = backing_file(device)
    console = lab.node.console_log(vm.name)

    report = lab.node.stop(vm.name, grace_s=60)
    assert report.graceful, "the guest did not power off within the grace period"
    log = console.read_text()
    assert "CSIVMCTR power button: powering off" in log
    acknowledged = max(int(v) for v in re.findall(r"^CSIVMCTR (\d+)\r?$", log, re.MULTILINE))
    assert counter.read_counter(image) >= acknowledged
    assert not lab.conn.exists(vm.name)
    assert loops_backing(image) == []


def test_a_crashed_guest_is_noticed_and_stop_still_cleans_up(lab: Lab) -> None:
    volume_id = lab.block_volume("crash-disk")
    vm = lab.counter_vm("csi-vm-test-crash", volume_id)
    lab.node.start(vm)
    device = lab.published_device(vm.name)
    wait_for_counter(device, above=0, within=BOOT_LIMIT_S)
    image = backing_file(device)

    # The qemu process dies under the guest, as on an OOM kill.
    pid = int(pathlib.Path(f"/run/libvirt/qemu/{vm.name}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    status = _wait_not_running(lab, vm.name)
    assert status.crashed, status.domain
    assert status.problem and "crashed" in status.problem

    report = lab.node.stop(vm.name)
    assert report.before.crashed
    assert not lab.conn.exists(vm.name)
    assert loops_backing(image) == []
    assert mounts_under(lab.node.vm_dir(vm.name)) == []


def test_a_failed_start_leaves_nothing_behind(lab: Lab) -> None:
    volume_id = lab.block_volume("failed-start-disk")
    vm = lab.counter_vm("csi-vm-test-badboot", volume_id)
    missing = lab.node.vm_dir(vm.name).parent / "no-such-kernel"
    broken = node.VmOnVolumes(
        name=vm.name, uuid=vm.uuid, memory_mib=vm.memory_mib, disks=vm.disks,
        boot=domain.DirectBoot(kernel=missing, initramfs=missing, cmdline=""),
    )  # fmt: skip

    with pytest.raises(errors.CsiVmError):
        lab.node.start(broken)

    assert not lab.conn.exists(vm.name)
    assert mounts_under(lab.node.vm_dir(vm.name)) == []
    with pytest.raises(errors.NotFound):
        lab.node.status(vm.name)
    published = {e.volume.volume_id: e.published_node_ids for e in lab.csi.list_volumes()}
    assert published[volume_id] == ()


def test_an_unknown_volume_fails_the_start_cleanly(lab: Lab) -> None:
    vm = lab.counter_vm("csi-vm-test-novolume", "no-such-volume")
    with pytest.raises(errors.NotFound):
        lab.node.start(vm)
    assert not lab.conn.exists(vm.name)
    with pytest.raises(errors.NotFound):
        lab.node.status(vm.name)


def _wait_not_running(lab: Lab, name: str) -> node.VmStatus:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = lab.node.status(name)
        if not status.running:
            return status
        time.sleep(0.1)
    raise AssertionError(f"{name} still runs 20 s after its qemu was killed")


def test_counter_guest_runs_on_an_image_in_a_filesystem_volume(lab: Lab) -> None:
    cap = models.VolumeCapability(
        mode=models.VolumeMode.FILESYSTEM,
        access=models.AccessMode.SINGLE_NODE_WRITER,
        fs_type="ext4",
    )
    volume_id = lab.csi.create_volume("fs-disk", size=64 << 20, capabilities=(cap,)).volume_id
    vm = lab.counter_vm("csi-vm-test-fs", volume_id)
    vm = dataclasses.replace(vm, disks=(node.VolumeDisk(volume_id=volume_id, capability=cap),))

    lab.node.start(vm)
    image = lab.node.vm_dir(vm.name) / "disks" / "vda" / "publish" / diskfile.IMAGE_NAME
    try:
        first = wait_for_counter(image, above=0, within=BOOT_LIMIT_S)
        wait_for_counter(image, above=first, within=10)
    finally:
        lab.node.stop(vm.name, grace_s=0)
    assert mounts_under(lab.node.vm_dir(vm.name)) == []
    assert not lab.conn.exists(vm.name)
