"""The guest of a launcher Pod is told that a disk grew, once its device really did.

The controller grows a Block disk by CSI expansion (`csi_vm.controller.expand`:
a larger request, which the external-resizer and the kubelet carry out); qemu
goes on with the size it opened the device at until it is told, as the
CLI's online expansion does (`launcher.blockjobs.resize`). Each pass over a
running VM compares, per disk, the size its spec asks for, the size of the
device the kubelet published for the launcher Pod, and the size qemu shows:
qemu is told the spec's size once the device is at least that large, never
before (the guest would then read past the device's end), and never a size
smaller than it has. A Filesystem disk is copied into a larger claim while
the VM is stopped instead: nothing to tell a running guest.

Whether a disk was grown under a running guest is the VM's ``DiskSize``
condition, with the size the guest was told and how.
"""

from __future__ import annotations

import logging
import pathlib

from csi_vm import errors
from csi_vm.agent import state
from csi_vm.crd import kinds, rules
from csi_vm.crd import models as crd
from csi_vm.flows import vmrun
from csi_vm.kube import quantity
from launcher import blockjobs, devices, libvirt_conn

log = logging.getLogger("csi_vm.agent")

Json = state.Json
DISK_SIZE = "DiskSize"
_CSI = "kubernetes.io~csi"


def follow(
    agent: state.Agent, conn: libvirt_conn.Connection, vm: Json, *, dom: str, pod: Json
) -> list[Json]:
    """Tell the guest of every disk that grew; the VM's ``DiskSize`` condition, if any changed."""
    meta, spec = crd.meta(vm), crd.spec(vm, crd.VMSpec)
    told = []
    for index, disk in enumerate(spec.disks):
        target = vmrun.target(index)
        want = quantity.to_bytes(disk.size)
        seen = blockjobs.capacity(conn, dom, target=target)
        if seen >= want:
            continue
        device = _device_bytes(agent, meta, disk, pod=pod)
        if device is None or device < want:
            log.info(
                "%s/%s: qemu has %d bytes, the spec asks %d, the device has %s: waiting",
                dom, target, seen, want, device,
            )  # fmt: skip
            continue
        blockjobs.resize(conn, dom, target=target, size=want)
        told.append(f"disk {disk.name} ({target}) grown under the running guest to {disk.size}")
        log.info("%s/%s: guest told the disk is now %d bytes", dom, target, want)
    if not told:
        return []
    message = "; ".join(told) + ": CSI expansion, then the guest told the new size"
    cond = state.tell(agent, vm, kind=DISK_SIZE, reason="GuestResized", message=message, ok=True)
    return [cond]


def _device_bytes(agent: state.Agent, meta: crd.Meta, disk: crd.Disk, *, pod: Json) -> int | None:
    """The size of the Block device the kubelet published for the launcher Pod; None if none."""
    claim = agent.objs.get(kinds.PVC, disk.claim_of(meta.name), namespace=meta.namespace)
    volume = (claim.get("spec") or {}).get("volumeName")
    if rules.volume_mode(claim) is not crd.VolumeMode.BLOCK or not volume:
        return None
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    link = agent.kubelet_dir / "pods" / uid / "volumeDevices" / _CSI / str(volume)
    try:
        return devices.describe(pathlib.Path(link).resolve()).size_bytes
    except errors.NotFound as err:
        log.info("%s: %s", link, err)
        return None
