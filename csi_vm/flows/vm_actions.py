"""Journaled actions on running VMs (the launcher's side), each with its undo.

`journal_actions` registers these next to the volume actions, so `resume` finds them.
Every action opens its own libvirt connection: a step may be replayed by a
later process after a crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib
import uuid
from collections.abc import Iterator
from typing import Any

from csi_vm import errors
from csi_vm.flows import context, engine, volume_actions
from launcher import blockjobs, domain, libvirt_conn, node, vmrecord

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


def _vm_on_volumes(data: Data) -> node.VmOnVolumes:
    boot = data["boot"]
    return node.VmOnVolumes(
        name=data["vm"],
        uuid=domain_uuid(data["vm"]),
        vcpus=data["vcpus"],
        memory_mib=data["memory_mib"],
        disks=tuple(
            node.VolumeDisk(
                volume_id=d["volume_id"],
                target=d["target"],
                capability=volume_actions.capability(d["mode"]),
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


# -- disks of running VMs -------------------------------------------------------


@contextlib.contextmanager
def _conn(
    env: context.Env, node_name: str, *, wait_s: float = 0.0
) -> Iterator[libvirt_conn.Connection]:
    """`wait_s`: an undo waits for a libvirtd being restarted rather than leave a job behind."""
    uri = env.cfg.node_config(node_name).libvirt
    with libvirt_conn.Connection.open(uri, wait_s=wait_s) as conn:
        yield conn


def _freeze(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    """The step's intent is journaled before the agent is asked: a process killed
    while the guest is frozen leaves the step for `resume` to undo (thaw)."""
    with _conn(env, data["node"]) as conn:
        got = blockjobs.freeze(conn, data["vm"])
    return {"frozen": got.frozen, "state": got.state, "why": got.why}


def _thaw(env: context.Env, data: Data, flow_id: str = "", seq: int = 0) -> Data:
    with _conn(env, data["node"], wait_s=libvirt_conn.RECONNECT_S) as conn:
        blockjobs.thaw(conn, data["vm"])
    return {}


def _undo_freeze(env: context.Env, data: Data) -> None:
    """Never leave a guest frozen, also when the process that froze it died.

    Thawed unless the agent confirmed that nothing is frozen: also when the
    freeze's state is "unknown" (neither the freeze nor a thaw after it
    answered) or the step has no answer at all (killed while the agent
    worked). An agent that is connected but does not answer leaves the flow
    pending (Transient), so `resume` asks it again; a VM that is gone or has
    no agent connected has nothing frozen by it.
    """
    if _confirmed_not_frozen(data):
        return  # the agent froze nothing, or a thaw answered after its freeze failed
    try:
        with _conn(env, data["node"], wait_s=libvirt_conn.RECONNECT_S) as conn:
            if not blockjobs.agent_connected(conn, data["vm"]):
                log.info("%s: no guest agent connected: nothing to thaw", data["vm"])
                return
            _thaw_or_pending(conn, data["vm"])
    except errors.NotFound as err:
        log.info("%s: thaw: %s (the VM is gone)", data["vm"], err)


def _thaw_or_pending(conn: libvirt_conn.Connection, vm: str) -> None:
    try:
        blockjobs.thaw(conn, vm)
    except errors.Unreachable as err:
        raise engine.Pending(
            err.message,
            hint=err.hint or "",
            reach=f"the guest agent of {vm} (the guest may still be frozen)",
        ) from err


def _confirmed_not_frozen(data: Data) -> bool:
    if "state" in data:
        return bool(data["state"] == blockjobs.NOT_FROZEN)
    return data.get("frozen") is False  # journaled before freeze states were recorded


def _backup_begin(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with _conn(env, data["node"]) as conn:
        disks = [blockjobs.BackupTarget(**d) for d in data["disks"]]
        blockjobs.backup_begin(conn, data["vm"], disks=disks)
    return {}


def _undo_backup_begin(env: context.Env, data: Data) -> None:
    """Stop the copy before its target volume is unpublished and deleted."""
    with _conn(env, data["node"], wait_s=libvirt_conn.RECONNECT_S) as conn:
        blockjobs.abort_job(conn, data["vm"])


def _backup_wait(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with _conn(env, data["node"]) as conn:
        stats = blockjobs.backup_wait(conn, data["vm"])
    return {"bytes": int(stats.get("disk_processed", 0) or stats.get("disk_total", 0))}


def _node_expand(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        entry = on.disk_record(data["vm"], data["target"])
    env.node_service(data["driver"], node=data["node"]).node_expand(
        data["volume_id"], volume_path=entry.publish_path, size=data["volume_size"],
        staging_path=entry.staging_path, capability=volume_actions.capability(data["mode"]),
    )  # fmt: skip
    return {}


def _block_resize(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with _conn(env, data["node"]) as conn:
        blockjobs.unslice(conn, data["vm"], target=data["target"])
        blockjobs.resize(conn, data["vm"], target=data["target"], size=data["size"])
    return {}


def _spare_disk(data: Data) -> node.VolumeDisk:
    return node.VolumeDisk(
        volume_id=data["volume_id"],
        target=data["target"],
        capability=volume_actions.capability(data["mode"]),
    )


def _publish_spare(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        entry, disk = on.publish_spare(
            data["vm"], _spare_disk(data), slot=data["slot"], image_size=data.get("size", 0)
        )
    return {"entry": dataclasses.asdict(entry), "source": str(disk.source)}


def _undo_publish_spare(env: context.Env, data: Data) -> None:
    with launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        entry = on.spare_entry(data["vm"], _spare_disk(data), slot=data["slot"])
        with contextlib.suppress(errors.NotFound):
            on.release(entry)


def _pivot(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with _conn(env, data["node"]) as conn:
        blockjobs.copy_and_pivot(
            conn, data["vm"], target=data["target"], dest=data["dest"], block=data["block"]
        )
    return {}


def _undo_pivot(env: context.Env, data: Data) -> None:
    """Put the guest back on its original disk: cancel a copy, or copy back after a pivot."""
    with _conn(env, data["node"], wait_s=libvirt_conn.RECONNECT_S) as conn:
        blockjobs.cancel(conn, data["vm"], target=data["target"])
        if blockjobs.disk_source(conn, data["vm"], target=data["target"]) == data["dest"]:
            log.warning("%s: copying %s back to its original disk", data["vm"], data["target"])
            blockjobs.copy_and_pivot(
                conn, data["vm"], target=data["target"], dest=data["old"], block=data["block"]
            )


def _adopt_disk(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        on.adopt(data["vm"], vmrecord.DiskRecord(**data["entry"]))
    return {}


def _release_disk(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    entry = vmrecord.DiskRecord(**data["entry"])
    with (
        launcher(env, node_name=data["node"], driver=data["driver"]) as on,
        contextlib.suppress(errors.NotFound),
    ):
        on.release(entry)
    return {}


def _undo_halt_for_move(env: context.Env, data: Data) -> None:
    """A cold migration rolled back: the VM starts again where it ran, on its own disks."""
    with launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        try:
            if on.status(data["vm"]).running:
                return
            on.stop(data["vm"], grace_s=0)  # a half-done stop: release what is left first
        except errors.NotFound:
            pass
    _launch(env, data, "", 0)


DO = {
    "launch": _launch,
    "halt": _halt,
    "halt_for_move": _halt,
    "freeze": _freeze,
    "thaw": _thaw,
    "backup_begin": _backup_begin,
    "backup_wait": _backup_wait,
    "node_expand": _node_expand,
    "block_resize": _block_resize,
    "publish_spare": _publish_spare,
    "pivot": _pivot,
    "adopt_disk": _adopt_disk,
    "release_disk": _release_disk,
}
UNDO = {
    "freeze": _undo_freeze,
    "backup_begin": _undo_backup_begin,
    "halt_for_move": _undo_halt_for_move,
    "launch": _undo_launch,
    "publish_spare": _undo_publish_spare,
    "pivot": _undo_pivot,
}
