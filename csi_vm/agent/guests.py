"""A CsiVM on this node: started when it should run and its disks are here, else stopped.

A VM belongs to the node its status names (where it runs) or, when it runs
nowhere, to its ``spec.nodeName``; the agents of other nodes leave it alone.
Before qemu starts, the agent writes its node into ``status.nodeName``:
from then on no other agent takes the VM, even if the spec names another
node. A stop removes it again, so the next start follows the spec. A VM
whose migration is Running is never started: it may run on the target
already, and that migration's recovery decides where it is.

Every pass writes the ``Running`` condition: True with where it runs, or
False with why not (disks not published yet, start failed, stopped).
"""

from __future__ import annotations

import contextlib
import logging
import time

from csi_vm import errors
from csi_vm.agent import disks, launched, launchers, state
from csi_vm.crd import kinds, rules, status, vmpod
from csi_vm.crd import models as crd
from csi_vm.kube import quantity
from launcher import domain, libvirt_conn

log = logging.getLogger("csi_vm.agent")

Json = state.Json
RUNNING = "Running"
_MIB = 1 << 20


def reconcile(agent: state.Agent, obj: Json) -> None:
    """Bring the VM's guest on this node in line with ``spec.running``; report its acceleration."""
    _reconcile(agent, obj)
    # From the status this pass started with: a status just written comes
    # back as an event of its own.
    launchers.report_acceleration(agent, obj)


def _reconcile(agent: state.Agent, obj: Json) -> None:
    meta = crd.meta(obj)
    # A migration of this VM holds the lock: it decides, and the next pass follows.
    with agent.locks.hold(meta.namespace, meta.name, wait=False) as free:
        if not free:
            return
        try:
            vm = agent.objs.get(kinds.VM, meta.name, namespace=meta.namespace)
        except errors.NotFound:
            return
        if rules.assigned_node(vm) != agent.node or crd.meta(vm).deletion_timestamp:
            return
        running = crd.spec(vm, crd.VMSpec).running
        # A guest that runs in the node's libvirt (started before launcher
        # Pods were turned on) stays there until it is stopped: a second
        # qemu in its launcher Pod would write the same disks.
        if agent.launcher_dir is not None and not active(agent.conn, state.domain_name(meta)):
            _forget_definition(agent, state.domain_name(meta))
            if running and (moving := _migration_running(agent, vm)):
                # Gone from its Pod may mean moved: that migration's recovery decides.
                log.info("%s: not started while migration %s is Running", meta.name, moving)
            elif running:
                launched.run(agent, vm, launchers=agent.launcher_dir)
            else:
                launched.stop(agent, vm)
        elif running:
            _run(agent, vm)
        else:
            _stop(agent, vm)


def forget(agent: state.Agent, obj: Json) -> None:
    """The VM was deleted: its guest must not outlive it on this node."""
    if (obj.get("status") or {}).get("nodeName") != agent.node or agent.launcher_dir:
        return  # a launcher Pod goes with its VM, and powers the guest off first
    meta = crd.meta(obj)
    with agent.locks.hold(meta.namespace, meta.name):
        dom = state.domain_name(meta)
        agent.conn.destroy(dom)
        agent.conn.undefine(dom)
        log.info("VM %s/%s deleted: its domain %s is gone", meta.namespace, meta.name, dom)


def _forget_definition(agent: state.Agent, dom: str) -> None:
    """Undefine a stopped domain the node's libvirt still has: the launcher Pod runs it now."""
    if agent.conn.exists(dom):
        agent.conn.undefine(dom)


def active(conn: libvirt_conn.Connection, dom: str) -> bool:
    try:
        return conn.status(dom).active
    except errors.NotFound:
        return False


def _run(agent: state.Agent, vm: Json) -> None:
    dom = state.domain_name(crd.meta(vm))
    if active(agent.conn, dom):
        cond = status.current(vm, RUNNING)
        if cond.get("status") != "True":  # a True one says how it got here: keep it
            cond = state.tell(
                agent, vm, kind=RUNNING, reason="Running", message=f"runs on {agent.node}", ok=True
            )
        fields = {"phase": "Running", "nodeName": agent.node, "message": None}
        state.write(agent, kinds.VM, vm, fields=fields, conditions=[cond])
        return
    if in_pod := _launcher_pod(agent, vm):
        # Launcher Pods were turned off while this one ran: its guest may still run.
        message = (
            f"the guest may still run in launcher Pod {in_pod}: delete that Pod to run it here"
        )
        cond = state.tell(
            agent, vm, kind=RUNNING, reason="InLauncherPod", message=message, ok=False
        )
        state.write(agent, kinds.VM, vm, fields={}, conditions=[cond])
        return
    if moving := _migration_running(agent, vm):
        # The guest may run on the target already (an agent that stopped
        # mid-migration); that migration's recovery decides, never a start here.
        log.info("%s: not started while migration %s is Running", dom, moving)
        return
    try:
        found = [disks.for_domain(agent, d) for d in disks.published(agent, vm, on=agent.node)]
    except (disks.NotPublished, disks.NotReady) as err:
        cond = state.tell(
            agent, vm, kind=RUNNING, reason="DiskNotPublished", message=str(err), ok=False
        )
        state.write(agent, kinds.VM, vm, fields={}, conditions=[cond])
        return
    # Claim the VM for this node before qemu starts: no other agent takes it now.
    vm = state.write(
        agent, kinds.VM, vm, fields={"phase": "Starting", "nodeName": agent.node}, conditions=[]
    )
    try:
        _start(agent, vm, dom, found)
    except errors.CsiVmError as err:
        with contextlib.suppress(errors.CsiVmError):
            agent.conn.undefine(dom)
        message = f"start on {agent.node} failed: {err}"
        cond = state.tell(agent, vm, kind=RUNNING, reason="StartFailed", message=message, ok=False)
        fields = {"phase": "Failed", "nodeName": None, "message": message}
        state.write(agent, kinds.VM, vm, fields=fields, conditions=[cond])
        return
    message = f"started on {agent.node} with {len(found)} disk(s)"
    agent.events.record(vm, reason="Started", message=message)
    cond = state.tell(agent, vm, kind=RUNNING, reason="Running", message=message, ok=True)
    fields = {"phase": "Running", "nodeName": agent.node, "message": None}
    state.write(agent, kinds.VM, vm, fields=fields, conditions=[cond])


def _launcher_pod(agent: state.Agent, vm: Json) -> str:
    """The name of the VM's launcher Pod, or "" when it has none."""
    meta = crd.meta(vm)
    try:
        agent.objs.get(kinds.POD, vmpod.pod_name(meta.name), namespace=meta.namespace)
    except errors.NotFound:
        return ""
    return vmpod.pod_name(meta.name)


def _migration_running(agent: state.Agent, vm: Json) -> str:
    """The name of a Running migration of ``vm``, or ""."""
    meta = crd.meta(vm)
    items, _ = agent.objs.list(kinds.MIGRATION, namespace=meta.namespace)
    for mig in items:
        if (mig.get("spec") or {}).get("vmName") == meta.name and (
            (mig.get("status") or {}).get("phase") == "Running"
        ):
            return str(mig["metadata"]["name"])
    return ""


def _start(agent: state.Agent, vm: Json, dom: str, found: list[domain.Disk]) -> None:
    meta, spec = crd.meta(vm), crd.spec(vm, crd.VMSpec)
    if not meta.uid:
        raise errors.InvalidInput(f"CsiVM {meta.name} has no uid")
    console = agent.console_log(dom)
    memory_mib = max(16, quantity.to_bytes(spec.memory) // _MIB)
    # The VM's uid is the domain's UUID: the same on every node it moves to.
    vm_spec = domain.VmSpec(
        name=dom, uuid=state.vm_uuid(meta.uid), disks=tuple(found), console_log=console,
        vcpus=spec.cpus, memory_mib=memory_mib, boot=agent.boot,
    )  # fmt: skip
    agent.conn.define(domain.to_xml(vm_spec))
    agent.conn.start(dom)
    log.info("started %s on %s", dom, agent.conn.uri)


def _stop(agent: state.Agent, vm: Json) -> None:
    dom = state.domain_name(crd.meta(vm))
    if agent.conn.exists(dom):
        if active(agent.conn, dom):
            _power_off(agent, dom)
        agent.conn.undefine(dom)
        agent.events.record(vm, reason="Stopped", message=f"stopped on {agent.node}")
    cond = state.tell(
        agent, vm, kind=RUNNING, reason="Stopped", message="spec.running is false", ok=False
    )
    fields = {"phase": "Stopped", "nodeName": None, "message": None}
    state.write(agent, kinds.VM, vm, fields=fields, conditions=[cond])


def _power_off(agent: state.Agent, dom: str) -> None:
    """Ask the guest to power off for up to the grace period, then destroy it."""
    if agent.stop_grace_s > 0:
        with contextlib.suppress(errors.CsiVmError):  # a guest without ACPI: destroy below
            agent.conn.shutdown(dom)
            deadline = time.monotonic() + agent.stop_grace_s
            while time.monotonic() < deadline and active(agent.conn, dom):
                time.sleep(0.2)
    agent.conn.destroy(dom)
