"""Journaled actions on running VMs (the launcher's side), each with its undo.

`actions` registers these next to the volume actions, so `resume` finds them.
Every action opens its own libvirt connection: a step may be replayed by a
later process after a crash.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

from csi_vm import errors, spec
from csi_vm.csi import models
from csi_vm.flows import context
from launcher import domain, libvirt_conn, node

log = logging.getLogger("csi_vm.flows")

Data = dict[str, Any]

#: VM names are unique in a store; the domain UUID follows from the name, so
#: a replayed start and every node agree on it (migration needs the same UUID)
_UUID_NS = uuid.UUID("6f1c1f4e-6d0b-4c36-9a1e-0c5b0f6a7c11")


def domain_uuid(vm: str) -> uuid.UUID:
    return uuid.uuid5(_UUID_NS, vm)


def launcher_dir(env: context.Env, node_name: str) -> pathlib.Path:
    return env.state_dir / "launcher" / node_name


@contextlib.contextmanager
def launcher(env: context.Env, *, node_name: str, driver: str) -> Iterator[node.Node]:
    """The launcher for one node: its libvirt daemon and the driver's node service there."""
    uri = env.cfg.node_config(node_name).libvirt
    with libvirt_conn.Connection.open(uri) as conn:
        yield node.Node(
            csi=env.node_service(driver, node=node_name),
            conn=conn,
            state_dir=launcher_dir(env, node_name),
        )


def capability(mode: str) -> models.VolumeCapability:
    access = models.AccessMode.SINGLE_NODE_WRITER
    if mode == spec.Mode.BLOCK:
        return models.VolumeCapability(mode=models.VolumeMode.BLOCK, access=access)
    return models.VolumeCapability(mode=models.VolumeMode.FILESYSTEM, access=access, fs_type="ext4")


def _vm_on_volumes(data: Data) -> node.VmOnVolumes:
    boot = data["boot"]
    return node.VmOnVolumes(
        name=data["vm"],
        uuid=domain_uuid(data["vm"]),
        vcpus=data["vcpus"],
        memory_mib=data["memory_mib"],
        disks=tuple(
            node.VolumeDisk(
                volume_id=d["volume_id"], target=d["target"], capability=capability(d["mode"])
            )
            for d in data["disks"]
        ),
        boot=domain.DirectBoot(
            kernel=pathlib.Path(boot["kernel"]),
            initramfs=pathlib.Path(boot["initramfs"]),
            cmdline=boot["cmdline"],
        )
        if boot
        else None,
    )


def _launch(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        status = on.start(_vm_on_volumes(data))
    return {"console": str(status.console_log)}


def _undo_launch(env: context.Env, data: Data) -> None:
    _halt(env, {**data, "grace_s": 0}, "", 0)


def _halt(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    """Stop the VM on its node and release its disks there; a VM not started is no error."""
    with launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        try:
            on.stop(data["vm"], grace_s=data.get("grace_s", 0))
        except errors.NotFound:
            log.info("%s was not started on %s: nothing to stop", data["vm"], data["node"])
    return {}


DO = {"launch": _launch, "halt": _halt}
UNDO = {"launch": _undo_launch}
