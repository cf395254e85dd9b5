"""A CsiVMMigration between launcher Pods: the guest leaves its Pod for one on the target node.

The controller makes the target launcher Pod (`csi_vm.controller.podmigration`)
and schedules the migration. Then both nodes' agents take part:

- the target node's agent writes the target Pod's TLS certificate
  (`podtls`; its libvirtd waits for it), checks that libvirtd answers on
  the Pod's socket, and says so with the condition ``TargetReady``;
- the source node's agent then has the source Pod's libvirtd migrate the
  guest peer to peer to the target Pod's libvirtd (qemu+tls, client
  certificates both ways), memory and, for a storage migration, every disk
  (NBD mirror) over qemu's TLS streams to the Pod's IP. On success the VM's
  status names the target node; the controller deletes the source Pod.

The source's libvirtd runs the job, not this agent: an agent that stops in
the middle leaves it running, and the restarted agent reads the outcome from
the source Pod's libvirtd (`launcher.migration.p2p_outcome`) once the job is
over. A migration deleted while it runs (a cancel) aborts the job; the guest
goes on in the source Pod, and the target Pod goes with the migration.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib

from csi_vm import errors
from csi_vm.agent import guests, launched, state
from csi_vm.crd import kinds, names, status, vmpod
from csi_vm.crd import models as crd
from csi_vm.flows import vmrun
from launcher import libvirt_conn, migration

log = logging.getLogger("csi_vm.agent")

Json = state.Json
TARGET_READY = "TargetReady"


class Refused(errors.Rejected):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def ready_target(agent: state.Agent, mig: Json, vm: Json) -> None:
    """On the target node: certify the target Pod and report once its libvirtd answers."""
    meta = crd.meta(vm)
    pod = launched.pod_here(agent, meta)
    ip = ((pod or {}).get("status") or {}).get("podIP")
    if pod is None or agent.launcher_dir is None or not ip:
        return  # not scheduled or not started yet: the next pass looks again
    if (pod.get("status") or {}).get("phase") != "Running":
        return
    run_dir = _run_dir(agent, pod, meta)
    wait_s = 30.0 if launched.certify(agent, pod, run_dir) else 0.0
    try:
        with libvirt_conn.Connection.open(agent.launcher_uri(run_dir), wait_s=wait_s):
            pass
    except errors.Unreachable:
        return  # its libvirtd starts once the certificate is there
    if status.current(mig, TARGET_READY).get("status") == "True":
        return
    message = f"launcher Pod {pod['metadata']['name']} at {ip} on {agent.node} takes the guest"
    cond = status.condition(
        TARGET_READY, ok=True, reason="Listening", message=message,
        generation=crd.meta(mig).generation,
    )  # fmt: skip
    state.write(agent, kinds.MIGRATION, mig, fields={}, conditions=[cond])


def run(agent: state.Agent, mig: Json, vm: Json) -> None:
    """On the source node: migrate, and leave the guest in exactly one Pod."""
    fields = mig.get("status") or {}
    target = str(fields.get("targetNode") or "")
    strategy = fields.get("strategy")
    if strategy not in (names.SHARED_MIGRATION, names.STORAGE_MIGRATION):
        raise Refused(
            "UnknownStrategy",
            f"strategy {strategy} is not one the node agent runs ({names.SHARED_MIGRATION}, "
            f"{names.STORAGE_MIGRATION}); the VM keeps running on its node",
        )
    if crd.meta(mig).deletion_timestamp:
        raise Refused("Cancelled", "the migration was deleted before it started")
    meta = crd.meta(vm)
    dom = state.domain_name(meta)
    source = launched.pod_here(agent, meta)
    if source is None:
        raise Refused("VMNotRunningHere", f"{dom} has no launcher Pod on {agent.node}")
    if status.current(mig, TARGET_READY).get("status") != "True":
        _wait(agent, mig, message=f"waiting for the target launcher Pod on {target}")
        return
    ip = _target_ip(agent, vm, target)
    with libvirt_conn.Connection.open(agent.launcher_uri(_run_dir(agent, source, meta))) as conn:
        if not guests.active(conn, dom):
            raise Refused("VMNotRunningHere", f"{dom} does not run on {agent.node}")
        mig = _mark_running(agent, mig, target=target)
        copy = strategy == names.STORAGE_MIGRATION
        disks = [vmrun.target(i) for i in range(len(crd.spec(vm, crd.VMSpec).disks))]
        host = f"[{ip}]" if ":" in ip else ip
        try:
            took = migration.migrate_p2p(
                conn, dom, dconnuri=f"qemu+tls://{host}/system", migrate_uri=f"tcp://{host}",
                copy_disks=disks if copy else (), tls=agent.ca_dir is not None,
                bandwidth_mib_s=crd.spec(mig, crd.MigrationSpec).bandwidth_mib_s,
                cancelled=lambda: _cancelled(agent, mig),
            )  # fmt: skip
        except errors.CsiVmError as err:
            log.warning("migration of %s failed: %s", dom, err)
            settle(agent, mig, vm, conn=conn, why=str(err))
            return
        commit(agent, mig, vm, detail=f"{took} ms in all")


def recover(agent: state.Agent, mig: Json, vm: Json) -> None:
    """A migration left Running (the agent stopped during it): settle it from the source Pod."""
    meta = crd.meta(vm)
    source = launched.pod_here(agent, meta)
    if source is None:
        # Nothing here tells where the guest went: nothing is deleted on a guess.
        _wait(agent, mig, message=f"the source launcher Pod on {agent.node} is gone")
        return
    with libvirt_conn.Connection.open(agent.launcher_uri(_run_dir(agent, source, meta))) as conn:
        settle(agent, mig, vm, conn=conn, why="the node agent stopped during it")


def settle(
    agent: state.Agent, mig: Json, vm: Json, *, conn: libvirt_conn.Connection, why: str
) -> None:
    """From what the source's libvirtd says: committed, failed, or left for the next pass."""
    dom = state.domain_name(crd.meta(vm))
    where = migration.p2p_outcome(conn, dom)
    if where is None:
        log.info("%s: migration %s not over yet (%s)", dom, crd.meta(mig).name, why)
        return  # still Running: the next pass asks again
    if where is migration.Where.TARGET:
        commit(agent, mig, vm, detail=f"finished on the target ({why})")
        return
    if where is migration.Where.NOWHERE:
        finish(agent, mig, ok=False, reason="DataSafety",
               message=f"{why}; then the guest ran in neither launcher Pod")  # fmt: skip
        return
    reason = "Cancelled" if _cancelled(agent, mig) else "MigrationFailed"
    finish(agent, mig, ok=False, reason=reason,
           message=f"{why}; the VM goes on running on {agent.node}")  # fmt: skip


def commit(agent: state.Agent, mig: Json, vm: Json, *, detail: str) -> None:
    target = str((mig.get("status") or {}).get("targetNode"))
    message = f"runs on {target} after a live migration from {agent.node}"
    cond = state.tell(agent, vm, kind=launched.RUNNING, reason="Migrated", message=message, ok=True)
    # The VM's status first: once the migration says Succeeded, the
    # controller deletes the VM's Pod (launcher or holder) on the node it left.
    fields = {"phase": "Running", "nodeName": target, "message": None}
    state.write(agent, kinds.VM, vm, fields=fields, conditions=[cond])
    finish(agent, mig, ok=True, reason="Succeeded", message=f"moved to {target}: {detail}")


def finish(agent: state.Agent, mig: Json, *, ok: bool, reason: str, message: str) -> None:
    agent.events.record(mig, reason=reason, message=message, warning=not ok)
    cond = status.condition(
        status.READY, ok=ok, reason=reason, message=message, generation=crd.meta(mig).generation
    )
    fields = {"phase": "Succeeded" if ok else "Failed", "message": message}
    # A deleted (cancelled) migration has no status to write: the VM's says where it runs.
    with contextlib.suppress(errors.NotFound):
        state.write(agent, kinds.MIGRATION, mig, fields=fields, conditions=[cond])
    log.info("migration %s: %s", crd.meta(mig).name, message)


def _run_dir(agent: state.Agent, pod: Json, meta: crd.Meta) -> pathlib.Path:
    base = agent.launcher_dir or vmpod.HOST_DIR
    return base / vmpod.run_dir_of(pod, meta.namespace, meta.name).name


def _target_ip(agent: state.Agent, vm: Json, target: str) -> str:
    meta = crd.meta(vm)
    name = vmpod.target_pod_name(meta.name, target)
    try:
        pod = agent.objs.get(kinds.POD, name, namespace=meta.namespace)
    except errors.NotFound:
        raise Refused("TargetGone", f"the target launcher Pod {name} is gone") from None
    ip = (pod.get("status") or {}).get("podIP")
    if not ip or (pod.get("metadata") or {}).get("deletionTimestamp"):
        raise Refused("TargetGone", f"the target launcher Pod {name} is ending or has no IP")
    return str(ip)


def _cancelled(agent: state.Agent, mig: Json) -> bool:
    """Whether the migration was deleted (or is being deleted) since it started."""
    meta = crd.meta(mig)
    try:
        now = agent.objs.get(kinds.MIGRATION, meta.name, namespace=meta.namespace)
    except errors.NotFound:
        return True
    return bool(crd.meta(now).deletion_timestamp) or crd.meta(now).uid != meta.uid


def _wait(agent: state.Agent, mig: Json, *, message: str) -> None:
    if (mig.get("status") or {}).get("message") == message:
        return
    cond = state.tell(agent, mig, kind=status.READY, reason="WaitingForTarget", message=message,
                      ok=False)  # fmt: skip
    state.write(agent, kinds.MIGRATION, mig, fields={"message": message}, conditions=[cond])


def _mark_running(agent: state.Agent, mig: Json, *, target: str) -> Json:
    message = f"migrating from launcher Pod on {agent.node} to {target}"
    agent.events.record(mig, reason="MigrationStarted", message=message)
    cond = status.condition(
        status.READY, ok=False, reason="Migrating", message=message,
        generation=crd.meta(mig).generation,
    )  # fmt: skip
    return state.write(
        agent, kinds.MIGRATION, mig, fields={"phase": "Running", "message": message},
        conditions=[cond],
    )  # fmt: skip
