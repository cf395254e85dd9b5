"""Domain XML from VmSpec."""

from __future__ import annotations

import pathlib
import uuid
from xml.etree import ElementTree

import pytest

from csi_vm import errors
from launcher import domain

P = pathlib.Path


def _spec(*disks: domain.Disk, boot: domain.DirectBoot | None = None) -> domain.VmSpec:
    return domain.VmSpec(
        name="vm-1",
        uuid=uuid.UUID(int=7),
        disks=disks,
        console_log=P("/var/log/vm-1.log"),
        vcpus=2,
        memory_mib=300,
        boot=boot,
    )


def _xml(spec: domain.VmSpec) -> ElementTree.Element:
    return ElementTree.fromstring(domain.to_xml(spec))


def test_basics_are_tcg_with_memory_vcpus_and_a_logged_serial_console() -> None:
    root = _xml(_spec())
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "vm-1"
    assert root.findtext("uuid") == str(uuid.UUID(int=7))
    assert (root.findtext("memory"), root.find("memory").get("unit")) == ("300", "MiB")  # type: ignore[union-attr]
    assert root.findtext("vcpu") == "2"
    assert root.find("devices/serial/source").get("path") == "/var/log/vm-1.log"  # type: ignore[union-attr]
    assert root.findtext("on_crash") == "destroy"


@pytest.mark.parametrize(
    ("disk", "source_attr", "io"),
    [
        (
            domain.Disk(source=P("/dev/loop3"), target="vda", kind=domain.DiskKind.BLOCK),
            "dev",
            "native",
        ),
        (
            domain.Disk(
                source=P("/v/disk.img"), target="vdb", kind=domain.DiskKind.FILE, format="qcow2"
            ),
            "file",
            "native",
        ),
        (
            domain.Disk(
                source=P("/v/disk.img"),
                target="vdc",
                kind=domain.DiskKind.FILE,
                cache=domain.Cache.WRITEBACK,
            ),
            "file",
            None,
        ),
    ],
    ids=["block", "file-qcow2", "file-writeback-no-native-io"],
)
def test_disks_are_virtio_with_native_io_only_when_direct(
    disk: domain.Disk, source_attr: str, io: str | None
) -> None:
    el = _xml(_spec(disk)).find("devices/disk")
    assert el is not None
    assert el.get("type") == disk.kind.value
    assert el.find("source").get(source_attr) == str(disk.source)  # type: ignore[union-attr]
    assert el.find("target").attrib == {"dev": disk.target, "bus": "virtio"}  # type: ignore[union-attr]
    driver = el.find("driver")
    assert driver is not None
    assert (driver.get("type"), driver.get("cache"), driver.get("io")) == (
        disk.format,
        disk.cache.value,
        io,
    )


def test_readonly_disk() -> None:
    disk = domain.Disk(
        source=P("/dev/sdb"), target="vda", kind=domain.DiskKind.BLOCK, readonly=True
    )
    assert _xml(_spec(disk)).find("devices/disk/readonly") is not None


def test_direct_kernel_boot_and_disk_boot() -> None:
    boot = domain.DirectBoot(
        kernel=P("/k/vmlinuz"), initramfs=P("/k/initrd"), cmdline="console=ttyS0"
    )
    os_el = _xml(_spec(boot=boot)).find("os")
    assert os_el is not None
    assert (os_el.findtext("kernel"), os_el.findtext("initrd"), os_el.findtext("cmdline")) == (
        "/k/vmlinuz",
        "/k/initrd",
        "console=ttyS0",
    )
    assert _xml(_spec()).find("os/boot").get("dev") == "hd"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "build",
    [
        lambda: domain.Disk(source=P("/dev/x"), target="sda", kind=domain.DiskKind.BLOCK),
        lambda: domain.Disk(source=P("rel/x"), target="vda", kind=domain.DiskKind.FILE),
        lambda: domain.Disk(source=P("/x"), target="vda", kind=domain.DiskKind.FILE, format="vmdk"),
        lambda: domain.VmSpec(name="bad name", uuid=uuid.uuid4(), disks=(), console_log=P("/l")),
        lambda: domain.VmSpec(
            name="v", uuid=uuid.uuid4(), disks=(), console_log=P("/l"), memory_mib=1
        ),
        lambda: _spec(
            domain.Disk(source=P("/a"), target="vda", kind=domain.DiskKind.FILE),
            domain.Disk(source=P("/b"), target="vda", kind=domain.DiskKind.FILE),
        ),
    ],
    ids=["scsi-target", "relative-source", "format", "name", "memory", "repeated-target"],
)
def test_invalid_descriptions_are_rejected(build: object) -> None:
    with pytest.raises(errors.InvalidInput):
        build()  # type: ignore[operator]


def test_every_vm_gets_the_guest_agent_channel() -> None:
    channel = _xml(_spec()).find("devices/channel")
    assert channel is not None and channel.get("type") == "unix"
    assert channel.find("source").get("mode") == "bind"  # type: ignore[union-attr]
    target = channel.find("target")
    assert target is not None
    assert (target.get("type"), target.get("name")) == ("virtio", "org.qemu.guest_agent.0")


@pytest.mark.parametrize(("readonly", "discard"), [(False, "unmap"), (True, None)])
def test_writable_disks_pass_discards_and_zeros_to_the_volume(
    readonly: bool, discard: str | None
) -> None:
    disk = domain.Disk(
        source=P("/dev/loop3"), target="vda", kind=domain.DiskKind.BLOCK, readonly=readonly
    )
    driver = _xml(_spec(disk)).find("devices/disk/driver")
    assert driver is not None
    assert (driver.get("discard"), driver.get("detect_zeroes")) == (discard, discard)
