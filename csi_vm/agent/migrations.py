"""A CsiVMMigration scheduled from this node: run it, and leave the guest on exactly one node.

The controller writes the decision (phase Scheduled, sourceNode, targetNode,
strategy); the source node's agent takes it from there:

    Scheduled --(checks pass, status Running)--> libvirt live migration
        ok     -> source definition removed, VM status.nodeName = target, Succeeded
        failed -> `launcher.migration.settle_on_source`: the guest runs on the
                  source only, Failed with the reason

A migration found Running when the agent starts (it was restarted in the
middle; libvirt cancels a job whose client went away) is settled the same
way: finished on the target is committed, anything else goes back to the
source. A shared-volume migration moves memory only: the target's holder
Pod publishes the same volumes there. A storage migration also copies every
disk (NBD mirror) into the new claims the controller made on the target
(`csi_vm.controller.movedisks`), which switches the VM to them afterwards.
Either waits (still Scheduled, condition WaitingForTarget) until the
target's holder Pod runs. With launcher Pods, `podmigrations` runs the
migration between the VM's two launcher Pods instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from csi_vm import errors
from csi_vm.agent import disks, guests, podmigrations, state
from csi_vm.crd import kinds, names, status
from csi_vm.crd import models as crd
from launcher import libvirt_conn, migration

log = logging.getLogger("csi_vm.agent")

Json = state.Json


class _Refused(errors.Rejected):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def reconcile(agent: state.Agent, obj: Json) -> None:
    if agent.launcher_dir is not None:
        _between_pods(agent, obj)
        return
    if not _ours(agent, obj):
        return
    with _fresh(agent, obj) as mig:
        if mig is None:
            return
        try:
            if (mig.get("status") or {}).get("phase") == "Running":
                _recover(agent, mig)
            else:
                _run(agent, mig)
        except _Refused as why:
            _finish(agent, mig, ok=False, reason=why.reason, message=why.message)


def _between_pods(agent: state.Agent, obj: Json) -> None:
    """With launcher Pods: the target's part, or the source's (`podmigrations`)."""
    fields = obj.get("status") or {}
    if fields.get("targetNode") == agent.node and fields.get("phase") == "Scheduled":
        podmigrations.ready_target(agent, obj, _vm(agent, obj))
        return
    if not _ours(agent, obj):
        return
    with _fresh(agent, obj) as mig:
        if mig is None:
            return
        try:
            vm = _vm(agent, mig)
            if (mig.get("status") or {}).get("phase") == "Running":
                podmigrations.recover(agent, mig, vm)
            else:
                podmigrations.run(agent, mig, vm)
        except (_Refused, podmigrations.Refused) as why:
            _finish(agent, mig, ok=False, reason=why.reason, message=str(why))


@contextlib.contextmanager
def _fresh(agent: state.Agent, obj: Json) -> Iterator[Json | None]:
    """The migration read again under its VM's lock; None once it is gone or not this node's."""
    meta, spec = crd.meta(obj), crd.spec(obj, crd.MigrationSpec)
    with agent.locks.hold(meta.namespace, spec.vm):
        try:
            mig = agent.objs.get(kinds.MIGRATION, meta.name, namespace=meta.namespace)
        except errors.NotFound:
            yield None
            return
        # It may have finished while this thread waited for the lock.
        yield mig if _ours(agent, mig) else None


def _ours(agent: state.Agent, obj: Json) -> bool:
    state_ = obj.get("status") or {}
    return state_.get("sourceNode") == agent.node and state_.get("phase") in (
        "Scheduled",
        "Running",
    )


def _vm(agent: state.Agent, mig: Json) -> Json:
    name = crd.spec(mig, crd.MigrationSpec).vm
    try:
        return agent.objs.get(kinds.VM, name, namespace=crd.meta(mig).namespace)
    except errors.NotFound:
        raise _Refused("VMNotFound", f"CsiVM {name} does not exist") from None


def _run(agent: state.Agent, mig: Json) -> None:
    fields = mig.get("status") or {}
    target = str(fields.get("targetNode") or "")
    strategy = fields.get("strategy")
    if strategy not in (names.SHARED_MIGRATION, names.STORAGE_MIGRATION):
        raise _Refused(
            "UnknownStrategy",
            f"strategy {strategy} is not one the node agent runs ({names.SHARED_MIGRATION}, "
            f"{names.STORAGE_MIGRATION}); the VM keeps running on its node",
        )
    vm = _vm(agent, mig)
    dom = state.domain_name(crd.meta(vm))
    if not guests.active(agent.conn, dom):
        raise _Refused("VMNotRunningHere", f"{dom} does not run on {agent.node}")
    # A storage migration copies every disk into the new claims made on the target.
    copying = strategy == names.STORAGE_MIGRATION
    name = crd.meta(mig).name
    claims = (lambda disk: names.migration_claim(name, disk)) if copying else None
    try:
        there = disks.published(agent, vm, on=target, running=True, claims=claims)
        sources = disks.migration_sources(there)
        uri = agent.peer_uri(target)
    except disks.NotReady as err:
        _wait(agent, mig, message=str(err))  # the next pass looks again
        return
    except errors.Rejected as err:
        raise _Refused(_reason(err), str(err)) from err
    mig = _mark_running(agent, mig, target=target)
    copy = [d.target for d in there] if copying else []
    try:
        dst = libvirt_conn.Connection.open(uri)
    except errors.Unreachable as err:  # the target's libvirt did not answer: nothing moved
        raise _Refused("TargetUnreachable", str(err)) from err
    # Any error from here on leaves the migration Running: the next pass
    # settles it (`_recover`) from what libvirt says, not from a guess.
    with dst:
        _migrate(agent, mig, vm, dst=dst, dom=dom, sources=sources, copy=copy)


def _wait(agent: state.Agent, mig: Json, *, message: str) -> None:
    cond = state.tell(agent, mig, kind=status.READY, reason="WaitingForTarget", message=message,
                      ok=False)  # fmt: skip
    state.write(agent, kinds.MIGRATION, mig, fields={}, conditions=[cond])


def _reason(err: errors.CsiVmError) -> str:
    return "DiskNotPublished" if isinstance(err, disks.NotPublished) else "Rejected"


def _mark_running(agent: state.Agent, mig: Json, *, target: str) -> Json:
    message = f"migrating from {agent.node} to {target}"
    agent.events.record(mig, reason="MigrationStarted", message=message)
    cond = status.condition(
        status.READY, ok=False, reason="Migrating", message=message,
        generation=crd.meta(mig).generation,
    )  # fmt: skip
    return state.write(
        agent, kinds.MIGRATION, mig, fields={"phase": "Running", "message": message},
        conditions=[cond],
    )  # fmt: skip


def _migrate(
    agent: state.Agent,
    mig: Json,
    vm: Json,
    *,
    dst: libvirt_conn.Connection,
    dom: str,
    sources: dict[str, migration.NewSource],
    copy: list[str],
) -> None:
    try:
        stats = migration.migrate(
            agent.conn, dst, dom, sources=sources, copy_disks=copy,
            console_log=str(agent.console_log(dom)),
        )  # fmt: skip
    except errors.CsiVmError as err:
        log.warning("migration of %s failed: %s; settling it on %s", dom, err, agent.node)
        _settle(agent, mig, vm, dst=dst, dom=dom, why=str(err))
        return
    detail = (
        f"downtime {stats.downtime_ms} ms, {stats.memory_bytes} bytes of memory, "
        f"{stats.disk_bytes} bytes of disk, {stats.duration_ms} ms in all"
    )
    _commit(agent, mig, vm, dst=dst, dom=dom, detail=detail)


def _recover(agent: state.Agent, mig: Json) -> None:
    """A migration left Running by an agent that stopped: finish the picture."""
    target = str((mig.get("status") or {}).get("targetNode") or "")
    vm = _vm(agent, mig)
    dom = state.domain_name(crd.meta(vm))
    with libvirt_conn.Connection.open(agent.peer_uri(target)) as dst:
        _settle(agent, mig, vm, dst=dst, dom=dom, why="the node agent stopped during it")


def _settle(
    agent: state.Agent,
    mig: Json,
    vm: Json,
    *,
    dst: libvirt_conn.Connection,
    dom: str,
    why: str,
) -> None:
    """After a failure: committed when the guest is on the target only, else back on the source."""
    if migration.where(agent.conn, dst, dom) is migration.Where.TARGET:
        _commit(agent, mig, vm, dst=dst, dom=dom, detail=f"finished on the target ({why})")
        return
    try:
        migration.settle_on_source(agent.conn, dst, dom)
    except errors.DataSafetyError as err:
        _finish(agent, mig, ok=False, reason="DataSafety", message=f"{why}; then: {err}")
        return
    _finish(
        agent, mig, ok=False, reason="MigrationFailed",
        message=f"{why}; the VM goes on running on {agent.node}",
    )  # fmt: skip


def _commit(
    agent: state.Agent, mig: Json, vm: Json, *, dst: libvirt_conn.Connection, dom: str, detail: str
) -> None:
    # The source's definition stays after a migration (PERSIST_DEST defines it
    # on the target); removing it here means only one node can start the guest.
    agent.conn.undefine(dom)
    podmigrations.commit(agent, mig, vm, detail=detail)


_finish = podmigrations.finish
