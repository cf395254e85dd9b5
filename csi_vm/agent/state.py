"""What every agent step gets: settings, connections, per-VM locks, status writes."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import threading
import uuid
from collections.abc import Callable, Iterator

from csi_vm import errors
from csi_vm.crd import events, status, status_write, vmpod
from csi_vm.crd import models as crd
from csi_vm.kube import objects
from launcher import domain, libvirt_conn

Json = objects.Json
COMPONENT = "csi-vm-node-agent"


class Locks:
    """One lock per VM: a migration and a start or stop of the same VM never overlap."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    def _lock(self, namespace: str, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((namespace, name), threading.Lock())

    @contextlib.contextmanager
    def hold(self, namespace: str, name: str, *, wait: bool = True) -> Iterator[bool]:
        """Hold the VM's lock; with ``wait=False`` yield False at once when it is taken."""
        lock = self._lock(namespace, name)
        got = lock.acquire(blocking=wait)
        try:
            yield got
        finally:
            if got:
                lock.release()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Agent:
    node: str
    objs: objects.Objects
    events: events.Recorder
    conn: libvirt_conn.Connection
    #: the kubelet's root directory, as this process sees it
    kubelet_dir: pathlib.Path
    #: console logs (the same path on every node: a migration names the target's file)
    state_dir: pathlib.Path
    #: the libvirt URI of another node, for migrations
    peer_uri: Callable[[str], str]
    #: direct kernel boot for every guest of this node; None boots the first disk
    boot: domain.DirectBoot | None = None
    #: how long a stop asks the guest to power off before it is destroyed
    stop_grace_s: float = 30.0
    #: how long a published block volume may take to show its device
    device_timeout_s: float = 5.0
    locks: Locks = dataclasses.field(default_factory=Locks)
    #: guests in launcher Pods (`csi_vm.agent.launched`): the node's directory
    #: of their run directories, at the host's path; None runs them on ``conn``
    launcher_dir: pathlib.Path | None = None
    #: the libvirt URI of the launcher whose run directory is given
    launcher_uri: Callable[[pathlib.Path], str] = vmpod.socket_uri
    #: the migration CA (tls.crt, tls.key): launcher Pods get TLS certificates
    #: from it (`csi_vm.agent.podtls`); None: their libvirtd does not listen
    ca_dir: pathlib.Path | None = None

    def console_log(self, dom: str) -> pathlib.Path:
        # Flat in the state dir, which exists on every node: a migration's
        # target has no per-VM directory for it, and qemu creates only the file.
        return self.state_dir / f"{dom}.console.log"


def domain_name(meta: crd.Meta) -> str:
    """The libvirt name of a namespaced VM (`csi_vm.crd.vmpod.domain_name`)."""
    return vmpod.domain_name(meta.namespace, meta.name)


def vm_uuid(text: str) -> uuid.UUID:
    """The VM's uid as the domain's UUID: the same on every node it moves to."""
    try:
        return uuid.UUID(text)
    except ValueError as err:
        raise errors.InvalidInput(f"uid {text!r} is not a UUID") from err


def peer_uris(explicit: dict[str, str], template: str) -> Callable[[str], str]:
    """A node's libvirt URI: named explicitly, else ``template`` with {node} filled in."""

    def uri(node: str) -> str:
        if node in explicit:
            return explicit[node]
        if "{node}" not in template:
            raise errors.InvalidInput(
                f"no libvirt URI for node {node}: the peer URI template {template!r} "
                "has no {node}"
            )
        return template.replace("{node}", node)

    return uri


def write(
    agent: Agent, res: objects.Resource, obj: Json, *, fields: Json, conditions: list[Json]
) -> Json:
    """Patch ``obj``'s status; the agent reports, the generation stays the controller's.

    What the agent reports is true whatever else the status says, so after a
    conflict the same fields and conditions go onto the object as it is now.
    """
    change = status_write.fixed(fields, conditions)
    return status_write.write(agent.objs, res, obj, change=change, observed=False)


def tell(agent: Agent, obj: Json, *, kind: str, reason: str, message: str, ok: bool) -> Json:
    """A condition of type ``kind``, with an Event the first time its message appears."""
    return status.tell(agent.events, obj, kind=kind, reason=reason, message=message, ok=ok)
