"""Run VMs whose disks are CSI volumes on one node: start, status, stop.

Start stages (when the driver stages) and publishes each disk through the
node's CSI node service, finds the device (block volumes) or the image file
(filesystem volumes), then defines and starts the libvirt domain. Stop
reverses every step in the opposite order, also after a crash of the guest or
of a previous start half-way through (see `vmrecord`).

Block disks are given to qemu as the real device node the target resolves to,
not the target path: /dev is the same in every mount namespace, so this also
holds for a second libvirt node on the same machine.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import pathlib
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from csi_vm import diskfile, errors
from csi_vm.csi import models
from launcher import devices, domain, libvirt_conn, vmrecord

if TYPE_CHECKING:
    # Only a type here: the caller brings the client, and with it gRPC.
    from csi_vm.csi import client

log = logging.getLogger(__name__)

#: how long stop waits for a guest to power off when asked nicely
DEFAULT_GRACE_S = 30.0
_MIB = 1 << 20


@dataclasses.dataclass(frozen=True, kw_only=True)
class VolumeDisk:
    """A VM disk on a CSI volume that exists already (created by the controller side)."""

    volume_id: str
    target: str = "vda"
    capability: models.VolumeCapability
    volume_context: Mapping[str, str] = dataclasses.field(default_factory=dict)
    publish_context: Mapping[str, str] = dataclasses.field(default_factory=dict)
    readonly: bool = False

    @property
    def block(self) -> bool:
        return self.capability.mode == models.VolumeMode.BLOCK


@dataclasses.dataclass(frozen=True, kw_only=True)
class VmOnVolumes:
    name: str
    uuid: uuid.UUID
    disks: tuple[VolumeDisk, ...]
    vcpus: int = 1
    memory_mib: int = 256
    boot: domain.DirectBoot | None = None


@dataclasses.dataclass(frozen=True)
class VmStatus:
    name: str
    domain: libvirt_conn.DomainStatus | None  # None: the domain is gone
    console_log: pathlib.Path

    @property
    def running(self) -> bool:
        return self.domain is not None and self.domain.active

    @property
    def crashed(self) -> bool:
        return self.domain is not None and self.domain.crashed

    @property
    def problem(self) -> str | None:
        """Why a VM the launcher started is not running, if it is not."""
        if self.domain is None:
            return "its domain disappeared from libvirt"
        if self.crashed:
            return f"it crashed ({self.domain.state}, {self.domain.reason})"
        if not self.domain.active:
            return f"it stopped without being asked ({self.domain.reason})"
        return None


@dataclasses.dataclass(frozen=True)
class StopReport:
    name: str
    before: VmStatus  # what the VM was doing when stop began
    disks: tuple[str, ...]  # volume ids unpublished (and unstaged)
    graceful: bool = False  # the guest powered itself off when asked


class Node:
    """One node: a libvirt connection and the CSI node service of the same machine."""

    def __init__(
        self,
        *,
        csi: client.Client,
        conn: libvirt_conn.Connection,
        state_dir: pathlib.Path,
        device_timeout: float = devices.DEFAULT_TIMEOUT_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._csi = csi
        self._conn = conn
        self._state_dir = state_dir
        self._device_timeout = device_timeout
        self._sleep = sleep
        self._stages: bool | None = None

    # -- paths ----------------------------------------------------------------

    def vm_dir(self, name: str) -> pathlib.Path:
        return self._state_dir / "vms" / name

    def console_log(self, name: str) -> pathlib.Path:
        return self.vm_dir(name) / "console.log"

    def _record_path(self, name: str) -> pathlib.Path:
        return self.vm_dir(name) / "record.json"

    def _stages_volumes(self) -> bool:
        if self._stages is None:
            caps = self._csi.node_capabilities()
            self._stages = models.NodeCapability.STAGE_UNSTAGE_VOLUME in caps
        return self._stages

    # -- start ----------------------------------------------------------------

    def start(self, vm: VmOnVolumes) -> VmStatus:
        """Attach every disk, define and start the domain; on failure undo it all."""
        vm_dir = self.vm_dir(vm.name)
        if self._record_path(vm.name).exists():
            raise errors.Rejected(
                f"VM {vm.name} is already started on {self._conn.uri}", hint="stop it first"
            )
        vm_dir.mkdir(parents=True, exist_ok=True)
        record = vmrecord.VmRecord(name=vm.name, uri=self._conn.uri)
        vmrecord.save(self._record_path(vm.name), record)
        try:
            disks = []
            for disk in vm.disks:
                record, attached = self._attach(record, vm_dir, disk)
                disks.append(attached)
            spec = domain.VmSpec(
                name=vm.name, uuid=vm.uuid, disks=tuple(disks), vcpus=vm.vcpus,
                memory_mib=vm.memory_mib, console_log=self.console_log(vm.name), boot=vm.boot,
            )  # fmt: skip
            self._conn.define(domain.to_xml(spec))
            self._conn.start(vm.name)
        except BaseException:
            log.warning("start of %s failed: undoing what was done", vm.name)
            self._undo(record, quiet=True)
            raise
        log.info("started %s on %s with %d disk(s)", vm.name, self._conn.uri, len(disks))
        return self.status(vm.name)

    def _attach(
        self, record: vmrecord.VmRecord, vm_dir: pathlib.Path, disk: VolumeDisk
    ) -> tuple[vmrecord.VmRecord, domain.Disk]:
        entry = self._entry(vm_dir / "disks" / disk.target, disk)
        record = record.with_disk(entry)
        vmrecord.save(self._record_path(record.name), record)
        self._publish(entry, disk)
        return record, self._disk_for(entry, disk)

    def _entry(self, disk_dir: pathlib.Path, disk: VolumeDisk) -> vmrecord.DiskRecord:
        disk_dir.mkdir(parents=True, exist_ok=True)
        staging = disk_dir / "staging" if self._stages_volumes() else None
        return vmrecord.DiskRecord(
            volume_id=disk.volume_id, target=disk.target, block=disk.block,
            staging_path=str(staging or ""), publish_path=str(disk_dir / "publish"),
        )  # fmt: skip

    def _publish(self, entry: vmrecord.DiskRecord, disk: VolumeDisk) -> None:
        if entry.staging_path:
            pathlib.Path(entry.staging_path).mkdir(exist_ok=True)
            self._csi.node_stage(
                disk.volume_id, staging_path=entry.staging_path, capability=disk.capability,
                publish_context=disk.publish_context, volume_context=disk.volume_context,
            )  # fmt: skip
        self._csi.node_publish(
            disk.volume_id, target_path=entry.publish_path, capability=disk.capability,
            staging_path=entry.staging_path, readonly=disk.readonly,
            publish_context=disk.publish_context, volume_context=disk.volume_context,
        )  # fmt: skip

    # -- disks of a running VM: spares for copies, swaps after a pivot ---------

    def publish_spare(
        self, name: str, disk: VolumeDisk, *, slot: str, image_size: int = 0
    ) -> tuple[vmrecord.DiskRecord, domain.Disk]:
        """Publish a volume next to a running VM without giving it to the guest.

        A block copy or a storage migration writes into it; `adopt` makes it
        the VM's disk once the guest uses it, `release` undoes the publish.
        """
        entry = self.spare_entry(name, disk, slot=slot)
        self._publish(entry, disk)
        return entry, self._disk_for(entry, disk, image_size=image_size)

    def spare_entry(self, name: str, disk: VolumeDisk, *, slot: str) -> vmrecord.DiskRecord:
        """Where `publish_spare` publishes: the same paths every time, so a replay finds them."""
        return self._entry(self.vm_dir(name) / "spare" / slot, disk)

    def release(self, entry: vmrecord.DiskRecord) -> None:
        """Unpublish (and unstage) a volume published by `publish_spare` or `start`."""
        self._unpublish(entry)
        if entry.staging_path:
            self._unstage(entry)

    def record(self, name: str) -> vmrecord.VmRecord:
        """What this node holds for the VM; NotFound when it holds nothing."""
        return vmrecord.load(self._record_path(name))

    def disk_record(self, name: str, target: str) -> vmrecord.DiskRecord:
        for disk in self.record(name).disks:
            if disk.target == target:
                return disk
        raise errors.NotFound(f"VM {name} has no disk {target} on {self._conn.uri}")

    def adopt(self, name: str, entry: vmrecord.DiskRecord) -> None:
        """Record `entry` as the VM's disk for its target (after a pivot), so stop releases it."""
        record = vmrecord.load(self._record_path(name))
        disks = tuple(entry if d.target == entry.target else d for d in record.disks)
        vmrecord.save(self._record_path(name), dataclasses.replace(record, disks=disks))

    def adopt_record(self, record: vmrecord.VmRecord) -> None:
        """Take over a VM that arrived by migration: its disks were published here already."""
        self.vm_dir(record.name).mkdir(parents=True, exist_ok=True)
        vmrecord.save(self._record_path(record.name), record)

    def forget(self, name: str) -> None:
        """Drop the record of a VM that left this node (migrated away); its disks are released."""
        self._record_path(name).unlink(missing_ok=True)

    @property
    def conn(self) -> libvirt_conn.Connection:
        return self._conn

    def _disk_for(
        self, entry: vmrecord.DiskRecord, disk: VolumeDisk, *, image_size: int = 0
    ) -> domain.Disk:
        published = pathlib.Path(entry.publish_path)
        if disk.block:
            device = devices.wait_for_block(published, timeout=self._device_timeout)
            return domain.Disk(
                source=device.node, target=disk.target, kind=domain.DiskKind.BLOCK,
                readonly=disk.readonly,
            )  # fmt: skip
        image = published / diskfile.IMAGE_NAME
        if not image.exists():
            _create_image(image, size=image_size)
        return domain.Disk(
            source=image, target=disk.target, kind=domain.DiskKind.FILE, readonly=disk.readonly
        )

    # -- status and stop ------------------------------------------------------

    def status(self, name: str) -> VmStatus:
        """The VM's state; a VM the launcher does not know is NotFound."""
        if not self._record_path(name).exists():
            raise errors.NotFound(f"VM {name} is not started on {self._conn.uri}")
        try:
            state = self._conn.status(name)
        except errors.NotFound:
            state = None
        return VmStatus(name, state, self.console_log(name))

    def stop(self, name: str, *, grace_s: float = DEFAULT_GRACE_S) -> StopReport:
        """Power off (asking first, for up to grace_s), undefine, unpublish, unstage."""
        before = self.status(name)
        if before.problem:
            log.warning("VM %s was not running when stopped: %s", name, before.problem)
        graceful = before.running and grace_s > 0 and self._shut_down(name, grace_s)
        record = vmrecord.load(self._record_path(name))
        self._undo(record, quiet=False)
        return StopReport(name, before, tuple(d.volume_id for d in record.disks), graceful)

    def _shut_down(self, name: str, grace_s: float) -> bool:
        """Ask the guest to power off; whether it did within ``grace_s``."""
        try:
            self._conn.shutdown(name)
        except errors.CsiVmError as err:
            log.info("%s: shutdown request failed (%s); destroying it", name, err)
            return False
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not self._conn.status(name).active:
                return True
            self._sleep(0.2)
        log.info("%s did not power off within %g s; destroying it", name, grace_s)
        return False

    def _undo(self, record: vmrecord.VmRecord, *, quiet: bool) -> None:
        """Reverse a start. Every step is tried; the record stays if one fails."""
        failures: list[str] = []

        def attempt(what: str, step: Callable[[], None]) -> None:
            try:
                step()
            except errors.CsiVmError as err:
                failures.append(f"{what}: {err}")

        attempt("destroy", lambda: self._conn.destroy(record.name))
        attempt("undefine", lambda: self._conn.undefine(record.name))
        for disk in reversed(record.disks):
            attempt(f"unpublish {disk.volume_id}", functools.partial(self._unpublish, disk))
            if disk.staging_path:
                attempt(f"unstage {disk.volume_id}", functools.partial(self._unstage, disk))
        if failures:
            message = f"stopping {record.name} left work undone: " + "; ".join(failures)
            if quiet:  # already unwinding another error; that one is what the caller sees
                log.error("%s", message)
                return
            raise errors.OperationFailed(message, hint="run stop again once the cause is fixed")
        self._record_path(record.name).unlink(missing_ok=True)
        shutil.rmtree(self.vm_dir(record.name) / "disks", ignore_errors=True)

    def _unpublish(self, disk: vmrecord.DiskRecord) -> None:
        self._csi.node_unpublish(disk.volume_id, target_path=disk.publish_path)

    def _unstage(self, disk: vmrecord.DiskRecord) -> None:
        self._csi.node_unstage(disk.volume_id, staging_path=disk.staging_path)


def _create_image(image: pathlib.Path, *, size: int = 0) -> None:
    """A sparse raw image of `size` bytes, or filling the filesystem volume it lives on."""
    fs = os.statvfs(image.parent)
    # Leave 1 MiB for the filesystem's own growth; whole MiB keep qemu's sizes round.
    size = size or (fs.f_bavail * fs.f_frsize - _MIB) // _MIB * _MIB
    if size <= 0:
        raise errors.OutOfRange(f"filesystem volume at {image.parent} has no room for a disk")
    with image.open("xb") as out:
        out.truncate(size)
