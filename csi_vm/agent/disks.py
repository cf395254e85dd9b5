"""Where the kubelet published a VM's disks on a node, and what qemu opens.

The kubelet publishes a CSI volume on a node only for a pod that uses it;
the controller makes one holder Pod per VM and node for that, named as
`csi_vm.crd.names.holder_pod` says. The kubelet's layout under its root
directory, per pod uid and PersistentVolume name:

    block:       pods/<uid>/volumeDevices/kubernetes.io~csi/<pv>        a symlink, see below
    filesystem:  pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount        a mounted volume

For a block volume the CSI driver bind-mounts the device node onto the
kubelet's publish path, plugins/kubernetes.io/csi/volumeDevices/publish/<pv>/<uid>,
and the kubelet makes the pod's path an absolute symlink to it: the link
resolves only where that directory is mounted at the host's path too.
A filesystem volume holds the disk as one raw image file, named as the
launcher names it on one machine (`csi_vm.diskfile.IMAGE_NAME`).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable

from csi_vm import diskfile, errors
from csi_vm.agent import state
from csi_vm.crd import kinds, names, rules
from csi_vm.crd import models as crd
from csi_vm.flows import vmrun
from launcher import devices, domain, migration

Json = state.Json
_CSI = "kubernetes.io~csi"
#: where the kubelet has CSI drivers publish block volumes (under its root dir)
_PUBLISH_DIR = pathlib.Path("plugins/kubernetes.io/csi")


class NotPublished(errors.NotFound):
    """A disk of the VM is not (yet) published on the node: wait, or fix what the message says."""


class NotReady(errors.Busy):
    """The holder Pod exists but does not run yet: its volumes may not be published. Wait."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Published:
    disk: str  # the disk's name in the VM's spec
    target: str  # the guest's device: vda, vdb, ...
    path: pathlib.Path  # under the kubelet's directory
    block: bool

    @property
    def image(self) -> pathlib.Path:
        return self.path if self.block else self.path / diskfile.IMAGE_NAME


def published(
    agent: state.Agent,
    vm: Json,
    *,
    on: str,
    running: bool = False,
    claims: Callable[[str], str] | None = None,
) -> list[Published]:
    """The VM's disks as the kubelet of node ``on`` publishes them (paths not yet checked).

    ``running``: require the holder Pod to run, which the kubelet lets it do
    only once every volume is published; for another node, whose paths this
    node cannot see. ``claims``: the claim of each disk (by name) there, when
    not the VM's own (a storage migration's new claims).
    """
    meta = crd.meta(vm)
    pod_name = names.holder_pod(meta.name, on)
    try:
        pod = agent.objs.get(kinds.POD, pod_name, namespace=meta.namespace)
    except errors.NotFound:
        raise NotPublished(
            f"no holder Pod {pod_name} publishes the disks on {on} yet",
            hint="the controller makes it once the VM names its node",
        ) from None
    placed = (pod.get("spec") or {}).get("nodeName")
    if not placed:
        raise NotReady(f"holder Pod {pod_name} is not scheduled onto {on} yet")
    if placed != on:
        raise NotPublished(f"holder Pod {pod_name} is on node {placed}, not {on}")
    phase = (pod.get("status") or {}).get("phase")
    if running and phase != "Running":
        raise NotReady(f"holder Pod {pod_name} on {on} is {phase or 'Pending'}, not Running yet")
    uid = str((pod.get("metadata") or {}).get("uid") or "")
    spec = crd.spec(vm, crd.VMSpec)
    return [
        _disk(agent, disk, index=i, vm=meta, pod_uid=uid, claim=claims(disk.name) if claims else "")
        for i, disk in enumerate(spec.disks)
    ]


def _disk(
    agent: state.Agent, disk: crd.Disk, *, index: int, vm: crd.Meta, pod_uid: str, claim: str
) -> Published:
    claim = claim or disk.claim_of(vm.name)
    pvc = agent.objs.get(kinds.PVC, claim, namespace=vm.namespace)
    phase = (pvc.get("status") or {}).get("phase")
    volume = (pvc.get("spec") or {}).get("volumeName")
    if phase != "Bound" or not volume:
        raise NotPublished(f"disk {disk.name}: claim {claim} is {phase or 'Pending'}, not Bound")
    block = rules.volume_mode(pvc) is crd.VolumeMode.BLOCK
    pod_dir = agent.kubelet_dir / "pods" / pod_uid
    path = (
        pod_dir / "volumeDevices" / _CSI / volume
        if block
        else pod_dir / "volumes" / _CSI / volume / "mount"
    )
    return Published(disk=disk.name, target=vmrun.target(index), path=path, block=block)


def for_domain(agent: state.Agent, disk: Published) -> domain.Disk:
    """The disk as qemu opens it on this node; NotPublished while the kubelet is not done."""
    if disk.block:
        device = _block_device(agent, disk)
        # The device node, not the kubelet's link: /dev is the host's in the
        # libvirt container too, and the node is what the link resolves to.
        return domain.Disk(source=device.node, target=disk.target, kind=domain.DiskKind.BLOCK)
    if not disk.image.is_file():
        raise NotPublished(
            f"disk {disk.disk}: filesystem volume at {disk.path} holds no {diskfile.IMAGE_NAME}",
            hint="import an image into the volume first",
        )
    return domain.Disk(source=disk.image, target=disk.target, kind=domain.DiskKind.FILE)


def _block_device(agent: state.Agent, disk: Published) -> devices.BlockDevice:
    """The device behind a block disk's path, following the kubelet's symlink."""
    resolved = pathlib.Path(os.path.realpath(disk.path))
    if disk.path.is_symlink() and not resolved.exists():
        # The kubelet links only after the driver published: the target is
        # there on the host, but this container does not see it.
        raise NotPublished(
            f"disk {disk.disk}: {disk.path} links to {resolved}, which this container cannot see",
            hint=f"mount {agent.kubelet_dir / _PUBLISH_DIR} at the same path in the node "
            "DaemonSet (the chart does)",
        )
    try:
        return devices.wait_for_block(resolved, timeout=agent.device_timeout_s)
    except errors.OperationFailed as err:
        raise NotPublished(f"disk {disk.disk}: {err.message}") from err


def migration_sources(disks: list[Published]) -> dict[str, migration.NewSource]:
    """The target node's paths for a migration: the kubelet's, as the target sees them.

    The source cannot resolve the target's device nodes (another machine), so
    the target's qemu opens the published path itself; for a block disk that
    is the kubelet's symlink, which resolves in the target's libvirt container
    because it mounts the kubelet's CSI publish directory at the host's path.
    """
    return {d.target: migration.NewSource(path=str(d.image), block=d.block) for d in disks}
