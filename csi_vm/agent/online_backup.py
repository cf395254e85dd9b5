"""The node agent's side of a push backup of a VM in its launcher Pod.

See `csi_vm.crd.onlinesnap` for the hand-over. A launcher Pod's volumes
cannot change, and its libvirt sees no node directory but its run directory:
so the agent makes a device node of each backup claim's device (the kubelet
published it for the claim's holder Pod) in that directory, and has libvirt
back the guest up into it, the CLI's backup (`launcher.blockjobs`), frozen
around its start when the guest has an agent. The device nodes are removed
again whatever happens; the claims and holder Pods are the controller's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import stat

from csi_vm import errors
from csi_vm.agent import state
from csi_vm.crd import kinds, onlinesnap, rules, vmpod
from csi_vm.crd import models as crd
from csi_vm.flows import vmrun
from launcher import blockjobs, devices, libvirt_conn

log = logging.getLogger("csi_vm.agent")

Json = state.Json
_CSI = "kubernetes.io~csi"


class NotYet(errors.Busy):
    """A backup claim is not published on this node yet: the next pass tries again."""


def reconcile(agent: state.Agent, obj: Json) -> None:
    """Back the running guest up into the snapshot's claims when asked."""
    asked = onlinesnap.backup(obj)
    launchers = agent.launcher_dir
    if launchers is None or asked.get("nodeName") != agent.node:
        return
    if asked.get("phase") != onlinesnap.BACKUP_REQUESTED:
        return
    meta, spec = crd.meta(obj), crd.spec(obj, crd.SnapshotSpec)
    with agent.locks.hold(meta.namespace, spec.vm):
        try:
            obj = agent.objs.get(kinds.SNAPSHOT, meta.name, namespace=meta.namespace)
            vm = agent.objs.get(kinds.VM, spec.vm, namespace=meta.namespace)
        except errors.NotFound:
            return
        if onlinesnap.backup(obj).get("phase") != onlinesnap.BACKUP_REQUESTED:
            return
        try:
            _back_up(agent, obj, vm, launchers=launchers)
        except NotYet as err:
            log.info("snapshot %s/%s: %s", meta.namespace, meta.name, err)


def targets(obj: Json, vm: Json) -> dict[str, str]:
    """The guest device (vda, ...) of each disk to back up, and the claim it goes into."""
    wanted = {
        str(d.get("name"))
        for d in (obj.get("status") or {}).get("disks") or ()
        if d.get("strategy") in onlinesnap.COPIES
    }
    snap = crd.meta(obj).name
    return {
        vmrun.target(i): onlinesnap.volume_snapshot_name(snap, d.name)
        for i, d in enumerate(crd.spec(vm, crd.VMSpec).disks)
        if d.name in wanted
    }


def _back_up(agent: state.Agent, obj: Json, vm: Json, *, launchers: pathlib.Path) -> None:
    meta = crd.meta(vm)
    dom = vmpod.domain_name(meta.namespace, meta.name)
    run_dir = launchers / dom
    found = {t: published(agent, meta.namespace, claim) for t, claim in targets(obj, vm).items()}
    made: list[pathlib.Path] = []
    try:
        for target, device in found.items():
            made.append(device_node(run_dir / onlinesnap.backup_device(target), device))
        with libvirt_conn.Connection.open(agent.launcher_uri(run_dir)) as conn:
            froze = _begin(conn, dom, list(found))
            blockjobs.backup_wait(conn, dom)
    except NotYet:
        raise
    except errors.CsiVmError as err:
        _tell(agent, obj, phase=onlinesnap.BACKUP_FAILED, consistency="", reason=str(err))
        return
    finally:
        for node in made:
            with contextlib.suppress(FileNotFoundError):
                node.unlink()
    consistency = onlinesnap.CONSISTENT if froze.frozen else onlinesnap.CRASH_CONSISTENT
    _tell(agent, obj, phase=onlinesnap.BACKED_UP, consistency=consistency, reason=froze.why)


def _begin(conn: libvirt_conn.Connection, dom: str, found: list[str]) -> blockjobs.Freeze:
    """Start the backup inside a freeze when the guest has an agent: its point in time."""
    froze = blockjobs.freeze(conn, dom)
    if froze.state == blockjobs.UNKNOWN:
        raise errors.Unreachable(f"no backup begun: {froze.why}")
    dests = [
        blockjobs.BackupTarget(
            target=t, dest=str(vmpod.RUN_DIR / onlinesnap.backup_device(t)), block=True
        )
        for t in found
    ]
    try:
        blockjobs.backup_begin(conn, dom, disks=dests)
    finally:
        if froze.frozen:
            blockjobs.thaw(conn, dom)
    return froze


def published(agent: state.Agent, namespace: str, claim: str) -> devices.BlockDevice:
    """The device the kubelet published for the holder Pod of the backup's ``claim``."""
    holder = onlinesnap.backup_holder(claim)
    try:
        pod = agent.objs.get(kinds.POD, holder, namespace=namespace)
        pvc = agent.objs.get(kinds.PVC, claim, namespace=namespace)
    except errors.NotFound as err:
        raise NotYet(f"{err.message}: the controller makes it") from err
    if (pod.get("status") or {}).get("phase") != "Running":
        raise NotYet(f"holder Pod {holder} does not run yet")
    if rules.volume_mode(pvc) is not crd.VolumeMode.BLOCK:
        raise errors.Unsupported(f"claim {claim} is not a Block claim")
    uid = str(pod["metadata"].get("uid") or "")
    volume = str((pvc.get("spec") or {}).get("volumeName") or "")
    link = agent.kubelet_dir / "pods" / uid / "volumeDevices" / _CSI / volume
    try:
        return devices.describe(pathlib.Path(os.path.realpath(link)))
    except errors.NotFound as err:
        raise NotYet(f"claim {claim}: {err.message}") from err


def device_node(path: pathlib.Path, device: devices.BlockDevice) -> pathlib.Path:
    """A block device node at ``path`` for ``device`` (replacing a leftover of a dead agent)."""
    try:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(*device.number))
    except OSError as err:
        raise errors.OperationFailed(
            f"cannot make the backup's device node {path}: {err}",
            hint="the node agent's container needs the MKNOD capability (the chart grants it)",
        ) from err
    return path


def _tell(agent: state.Agent, obj: Json, *, phase: str, consistency: str, reason: str) -> None:
    fields = {onlinesnap.BACKUP_FIELD: {"phase": phase, "consistency": consistency,
                                         "reason": reason}}  # fmt: skip
    state.write(agent, kinds.SNAPSHOT, obj, fields=fields, conditions=[])
    warning = phase == onlinesnap.BACKUP_FAILED
    agent.events.record(obj, reason=f"Online{phase}", message=reason, warning=warning)
    meta = crd.meta(obj)
    log.info("snapshot %s/%s: %s: %s", meta.namespace, meta.name, phase, reason)
