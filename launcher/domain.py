"""Domain XML from a typed, frozen description of a VM.

Only what csi-vm needs: vCPUs, memory, virtio disks on block devices or image
files, a serial console logged to a file, the qemu guest agent's channel, and
either disk boot or direct kernel boot (the counter guest). Always
`<domain type='qemu'>` (TCG): on this project's machines /dev/kvm exists but
guests hang under it.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import re
import uuid
from xml.etree import ElementTree

from csi_vm import errors

#: the virtio port qemu-guest-agent opens in the guest (its default name)
AGENT_CHANNEL = "org.qemu.guest_agent.0"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_TARGET = re.compile(r"vd[a-z]{1,2}")


class DiskKind(enum.StrEnum):
    BLOCK = "block"  # a block device node
    FILE = "file"  # an image file


class Cache(enum.StrEnum):
    """libvirt cache modes; NONE and DIRECTSYNC open the disk with O_DIRECT."""

    NONE = "none"
    DIRECTSYNC = "directsync"
    WRITETHROUGH = "writethrough"
    WRITEBACK = "writeback"

    @property
    def direct(self) -> bool:
        return self in (Cache.NONE, Cache.DIRECTSYNC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Disk:
    """A virtio disk. cache=none bypasses the host page cache, so a write the
    guest saw complete is on the device: what makes migration and snapshots safe."""

    source: pathlib.Path
    target: str  # guest device name: vda, vdb, ...
    kind: DiskKind
    format: str = "raw"
    cache: Cache = Cache.NONE
    readonly: bool = False

    def __post_init__(self) -> None:
        if not _TARGET.fullmatch(self.target):
            raise errors.InvalidInput(f"disk target {self.target!r}: expected vda, vdb, ...")
        if not self.source.is_absolute():
            raise errors.InvalidInput(f"disk {self.target}: source {self.source} is not absolute")
        if self.format not in ("raw", "qcow2"):
            raise errors.InvalidInput(f"disk {self.target}: format {self.format!r} unsupported")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DirectBoot:
    kernel: pathlib.Path
    initramfs: pathlib.Path
    cmdline: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class VmSpec:
    name: str
    uuid: uuid.UUID
    disks: tuple[Disk, ...]
    console_log: pathlib.Path
    vcpus: int = 1
    memory_mib: int = 256
    boot: DirectBoot | None = None  # None: boot from the first disk

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise errors.InvalidInput(
                f"VM name {self.name!r}: letters, digits, '.', '_', '-', at most 63"
            )
        if self.vcpus < 1 or self.memory_mib < 16:
            raise errors.InvalidInput(f"VM {self.name}: needs >= 1 vCPU and >= 16 MiB")
        targets = [d.target for d in self.disks]
        if len(set(targets)) != len(targets):
            raise errors.InvalidInput(f"VM {self.name}: disk targets repeat: {targets}")


def _sub(
    parent: ElementTree.Element, tag: str, text: str = "", **attrs: str
) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attrs)
    if text:
        element.text = text
    return element


def _os(root: ElementTree.Element, boot: DirectBoot | None) -> None:
    os_el = _sub(root, "os")
    _sub(os_el, "type", "hvm", arch="x86_64")
    if boot is None:
        _sub(os_el, "boot", dev="hd")
        return
    _sub(os_el, "kernel", str(boot.kernel))
    _sub(os_el, "initrd", str(boot.initramfs))
    _sub(os_el, "cmdline", boot.cmdline)


def _disk(devices: ElementTree.Element, disk: Disk) -> None:
    el = _sub(devices, "disk", type=disk.kind.value, device="disk")
    driver = {"name": "qemu", "type": disk.format, "cache": disk.cache.value}
    if disk.cache.direct:
        # Linux native AIO is only asynchronous with O_DIRECT; libvirt refuses
        # io='native' with the other cache modes.
        driver["io"] = "native"
    if not disk.readonly:
        # A guest's discard (fstrim, or a filesystem mounted with discard)
        # reaches the volume, and zeros it writes are unmapped rather than
        # stored: space the guest frees is freed on thin volumes too.
        driver["discard"] = "unmap"
        driver["detect_zeroes"] = "unmap"
    _sub(el, "driver", **driver)
    if disk.kind == DiskKind.BLOCK:
        _sub(el, "source", dev=str(disk.source))
    else:
        _sub(el, "source", file=str(disk.source))
    _sub(el, "target", dev=disk.target, bus="virtio")
    if disk.readonly:
        _sub(el, "readonly")


def _devices(root: ElementTree.Element, spec: VmSpec) -> None:
    devices = _sub(root, "devices")
    for disk in spec.disks:
        _disk(devices, disk)
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(spec.console_log), append="on")
    _sub(serial, "target", port="0")
    # Every VM gets the agent's channel, so a guest that runs qemu-guest-agent
    # is frozen for online snapshots; libvirt picks the socket's path.
    channel = _sub(devices, "channel", type="unix")
    _sub(channel, "source", mode="bind")
    _sub(channel, "target", type="virtio", name=AGENT_CHANNEL)
    # Devices the VMs do not use cost boot time and memory under TCG.
    _sub(devices, "controller", type="usb", model="none")
    _sub(devices, "memballoon", model="none")


def to_xml(spec: VmSpec) -> str:
    root = ElementTree.Element("domain", type="qemu")
    _sub(root, "name", spec.name)
    _sub(root, "uuid", str(spec.uuid))
    _sub(root, "memory", str(spec.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus))
    _os(root, spec.boot)
    _sub(_sub(root, "features"), "acpi")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    # A crashed guest stays down, so the launcher sees the crash and reports it.
    _sub(root, "on_crash", "destroy")
    _devices(root, spec)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="unicode")
