"""A VM's launcher Pod: its name and layout, which the controller builds and the agent reads.

With launcher Pods (``--vm-pods=launcher``) each running VM has one Pod of
its own on its node, ``<vm>-launcher``. It uses the VM's claims itself, so
the kubelet hands the devices and mounts straight to it, and it runs a
libvirt daemon whose qemu is the guest. The daemon's directory is a
hostPath directory of its own per VM (`host_dir`), which the node agent
mounts at the same path and whose socket it opens to define and start the
domain. Paths in the domain are as the launcher's container sees them.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import pathlib
from typing import Any

from csi_vm import diskfile

Json = dict[str, Any]

#: Under this directory of the node, one directory per launcher Pod (`host_dir`).
HOST_DIR = pathlib.Path("/var/run/csi-vm/vms")
#: Where the launcher's container has that directory: libvirt's own run directory.
RUN_DIR = pathlib.Path("/var/run/libvirt")
#: libvirtd's socket in it
SOCKET = "libvirt-sock"
#: the guest's serial console, in the same directory: the agent can read it on the node
CONSOLE = "console.log"
#: the Pod's TLS key and certificates, which the node agent writes before
#: libvirtd starts (`csi_vm.agent.podtls`); the launcher copies them to
#: libvirt's and qemu's default places in its container
TLS_DIR = "tls"
#: libvirtd's TLS port in every launcher Pod: migrations come in there
TLS_PORT = 16514
#: what the launcher found of hardware acceleration on its node (`read_acceleration`)
ACCELERATION = "acceleration"
#: Labels and annotations of every launcher Pod: whose it is, and for which node
LABEL = "csi-vm.io/vm"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "vm-launcher"
NODE_ANNOTATION = "csi-vm.io/node"
RUN_DIR_ANNOTATION = "csi-vm.io/run-dir"
#: libvirt domain names: at most 63 characters (`launcher.domain`)
_MAX_DOMAIN = 63
_MAX_NAME = 253


class Accel(enum.StrEnum):
    """What a launcher's qemu runs guests with: KVM, or TCG (emulation) without it."""

    KVM = "kvm"
    TCG = "tcg"

    @property
    def domain_type(self) -> str:
        """libvirt's domain type for it: "qemu" is TCG."""
        return "kvm" if self is Accel.KVM else "qemu"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Acceleration:
    accel: Accel
    #: why, as the launcher found it (a forced setting, no /dev/kvm, a failed test guest)
    why: str

    @property
    def label(self) -> str:
        return f"{self.accel.name}: {self.why}" if self.why else self.accel.name


def read_acceleration(directory: pathlib.Path) -> Acceleration | None:
    """The launcher's finding in its run directory: "kvm|tcg[: why]"; None before it wrote one."""
    try:
        text = (directory / ACCELERATION).read_text().strip()
    except FileNotFoundError:
        return None
    word, _, why = text.partition(":")
    accel = Accel.KVM if word.strip() == Accel.KVM.value else Accel.TCG
    return Acceleration(accel=accel, why=why.strip())


def pod_name(vm: str) -> str:
    """The launcher Pod of ``vm``."""
    name = f"{vm}-launcher"
    if len(name) <= _MAX_NAME:
        return name
    return f"{vm[:200]}-launcher-{hashlib.sha256(vm.encode()).hexdigest()[:12]}"


def target_pod_name(vm: str, node: str) -> str:
    """The launcher Pod a live migration of ``vm`` makes on ``node``.

    Named after the node, not the migration: at most one per node, and never
    the name of the Pod the guest leaves (that one is on another node).
    """
    name = f"{vm}-launcher-{node}"
    if len(name) <= _MAX_NAME:
        return name
    return f"{vm[:200]}-launcher-{hashlib.sha256(f'{vm}/{node}'.encode()).hexdigest()[:12]}"


def pod_names(vm: str, node: str) -> tuple[str, str]:
    """The names ``vm``'s launcher Pod on ``node`` can have: the first one, or a migration's."""
    return pod_name(vm), target_pod_name(vm, node)


def node_of(pod: Json) -> str:
    """The node a launcher Pod was made for (its `NODE_ANNOTATION`)."""
    return str(((pod.get("metadata") or {}).get("annotations") or {}).get(NODE_ANNOTATION) or "")


def run_dir_of(pod: Json, namespace: str, vm: str) -> pathlib.Path:
    """A launcher Pod's run directory on its node: its annotation, else the VM's first one.

    A migration's target Pod has a directory of its own: the Pod the guest
    left may still be ending on that node when the guest comes back.
    """
    named = ((pod.get("metadata") or {}).get("annotations") or {}).get(RUN_DIR_ANNOTATION)
    return pathlib.Path(str(named)) if named else host_dir(namespace, vm)


def domain_name(namespace: str, name: str) -> str:
    """The libvirt name of a namespaced VM: "<namespace>_<name>", hashed when too long.

    "_" is in neither a namespace nor an object name, so two VMs never share one.
    """
    full = f"{namespace}_{name}"
    if len(full) <= _MAX_DOMAIN:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:12]
    return f"{full[: _MAX_DOMAIN - 13]}-{digest}"


def host_dir(namespace: str, name: str) -> pathlib.Path:
    """The node's directory of the VM's launcher: its libvirt socket and console log."""
    return HOST_DIR / domain_name(namespace, name)


def target_run_dir(namespace: str, name: str, node: str) -> pathlib.Path:
    """The run directory of the VM's migration target Pod on ``node`` (`target_pod_name`)."""
    first = host_dir(namespace, name)
    return first.with_name(f"{first.name}.to.{hashlib.sha256(node.encode()).hexdigest()[:12]}")


def socket_uri(directory: pathlib.Path) -> str:
    """The libvirt URI of the launcher whose run directory is ``directory`` on the node."""
    return f"qemu+unix:///system?socket={directory / SOCKET}"


def device(disk: str) -> pathlib.Path:
    """Where the launcher's container has a Block disk (a volumeDevices entry)."""
    return pathlib.Path("/dev/csi-vm") / disk


def mount(disk: str) -> pathlib.Path:
    """Where the launcher's container has a Filesystem disk's volume mounted."""
    return pathlib.Path("/csi-vm") / disk


def image(disk: str) -> pathlib.Path:
    """A Filesystem disk's image file, as the launcher's qemu opens it."""
    return mount(disk) / diskfile.IMAGE_NAME
