"""Journaled actions of a live migration, each with its undo (see flows.migrate)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from csi_vm import errors
from csi_vm.flows import context, vm_actions
from launcher import libvirt_conn, migration, vmrecord

log = logging.getLogger("csi_vm.flows")

Data = dict[str, Any]


@contextlib.contextmanager
def _pair(
    env: context.Env, data: Data, *, wait_s: float = 0.0
) -> Iterator[tuple[libvirt_conn.Connection, libvirt_conn.Connection]]:
    """Both nodes; `wait_s`: how long to wait for a libvirtd being restarted."""
    src_uri = env.cfg.node_config(data["source"]).libvirt
    dst_uri = env.cfg.node_config(data["node"]).libvirt
    with (
        libvirt_conn.Connection.open(src_uri, wait_s=wait_s) as src,
        libvirt_conn.Connection.open(dst_uri, wait_s=wait_s) as dst,
    ):
        yield src, dst


def _sources(raw: dict[str, Any]) -> dict[str, migration.NewSource]:
    return {t: migration.NewSource(path=s["path"], block=s["block"]) for t, s in raw.items()}


def _migrate(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    with _pair(env, data) as (src, dst):
        stats = migration.migrate(
            src, dst, data["vm"], sources=_sources(data["sources"]), copy_disks=data["copy"],
            console_log=data["console_log"], bandwidth_mib_s=data.get("bandwidth_mib_s", 0),
        )  # fmt: skip
    return {
        "downtime_ms": stats.downtime_ms,
        "disk_bytes": stats.disk_bytes,
        "memory_bytes": stats.memory_bytes,
        "migrate_ms": stats.duration_ms,
    }


def _undo_migrate(env: context.Env, data: Data) -> None:
    """Leave the guest on the source with its original disks, whatever point was reached.

    A libvirtd restarted mid-migration is waited for: its restart cancels
    the migration on its side, and the other side is settled here.
    """
    with _pair(env, data, wait_s=libvirt_conn.RECONNECT_S) as (src, dst):
        if migration.where(src, dst, data["vm"]) is migration.Where.TARGET:
            # Finished, but not recorded before the process died: move it back.
            log.warning("%s: migrated but not committed; migrating it back", data["vm"])
            migration.migrate(
                dst, src, data["vm"], sources=_sources(data["original"]),
                copy_disks=data["copy"], console_log=data["original_console_log"],
            )  # fmt: skip
            dst.undefine(data["vm"])
        migration.settle_on_source(src, dst, data["vm"])


def _adopt_vm(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    """The target node's launcher takes the VM over, with the disks published there."""
    entries = tuple(vmrecord.DiskRecord(**e) for e in data["entries"])
    with vm_actions.launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        on.adopt_record(vmrecord.VmRecord(name=data["vm"], uri=on.conn.uri, disks=entries))
    return {}


def _leave_node(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    """Release the VM's disks on the node it left, and its definition there."""
    with vm_actions.launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        try:
            record = on.record(data["vm"])
        except errors.NotFound:
            return {}  # done already
        if on.conn.exists(data["vm"]) and on.conn.status(data["vm"]).active:
            raise errors.DataSafetyError(f"{data['vm']} still runs on {data['node']}")
        on.conn.undefine(data["vm"])
        for entry in record.disks:
            with contextlib.suppress(errors.NotFound):
                on.release(entry)
        on.forget(data["vm"])
    return {}


DO = {"migrate": _migrate, "adopt_vm": _adopt_vm, "leave_node": _leave_node}
UNDO = {"migrate": _undo_migrate}
