"""A running guest's disk copied into a larger claim and the guest switched to it (pivot).

The agent's side of `csi_vm.controller.online_copy`, for a disk whose class
cannot expand: once the controller names the larger claim
(``resize.targetClaim``) and its holder Pod has the kubelet publish it, the
agent makes a device node of it in the launcher's run directory (as for a
push backup, `online_backup`), and the launcher's libvirt mirrors the disk
into it while the guest runs and switches the guest over once the mirror
caught up: the CLI's block copy and pivot (`launcher.blockjobs`), which
cancels the copy on any failure, so the guest keeps its old disk. Then the
guest is told the new size. The device node stays while the guest uses it.
The outcome goes to the VM's ``status.pivots``.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib

from csi_vm import errors
from csi_vm.agent import online_backup, state
from csi_vm.crd import kinds, vmpod
from csi_vm.crd import models as crd
from csi_vm.flows import vmrun
from csi_vm.kube import quantity
from launcher import blockjobs, libvirt_conn

log = logging.getLogger("csi_vm.agent")

Json = state.Json
PIVOTS = "pivots"
PIVOTED, COPY_FAILED = "Pivoted", "CopyFailed"


def copy_device(target: str) -> str:
    """The device node of a copy's larger claim in the launcher's run directory."""
    return f"copy-{target}"


def follow(
    agent: state.Agent, conn: libvirt_conn.Connection, vm: Json, *, dom: str, run_dir: pathlib.Path
) -> Json:
    """Copy and pivot each disk the controller asked for; ``vm`` as written."""
    meta, spec = crd.meta(vm), crd.spec(vm, crd.VMSpec)
    index = {d.name: i for i, d in enumerate(spec.disks)}
    done = dict((vm.get("status") or {}).get(PIVOTS) or {})
    for entry in (vm.get("status") or {}).get("disks") or ():
        resize, disk = dict(entry.get("resize") or {}), str(entry.get("name"))
        claim = str(resize.get("targetClaim") or "")
        if resize.get("phase") != "Copying" or not claim or disk not in index:
            continue
        if (done.get(disk) or {}).get("claimName") == claim:
            continue  # reported; the controller switches the VM's disk over
        size = quantity.to_bytes(spec.disks[index[disk]].size)
        target = vmrun.target(index[disk])
        try:
            why = _copy(agent, conn, dom, meta.namespace, claim, target=target, size=size,
                        run_dir=run_dir)  # fmt: skip
        except online_backup.NotYet as err:
            log.info("%s/%s: %s", dom, target, err)
            continue
        except errors.CsiVmError as err:
            why, phase = f"block copy into {claim} failed: {err}", COPY_FAILED
        else:
            phase = PIVOTED
        report = {disk: {"claimName": claim, "phase": phase, "reason": why}}
        vm = state.write(agent, kinds.VM, vm, fields={PIVOTS: report}, conditions=[])
        agent.events.record(vm, reason=phase, message=why, warning=phase == COPY_FAILED)
    return vm


def _copy(
    agent: state.Agent,
    conn: libvirt_conn.Connection,
    dom: str,
    namespace: str,
    claim: str,
    *,
    target: str,
    size: int,
    run_dir: pathlib.Path,
) -> str:
    dest = vmpod.RUN_DIR / copy_device(target)
    if blockjobs.disk_source(conn, dom, target=target) != str(dest):
        device = online_backup.published(agent, namespace, claim)
        node = online_backup.device_node(run_dir / copy_device(target), device)
        try:
            blockjobs.copy_and_pivot(conn, dom, target=target, dest=str(dest), block=True)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                node.unlink()  # the guest kept its disk
            raise
    # else: pivoted by an agent that stopped before it reported
    blockjobs.unslice(conn, dom, target=target)
    blockjobs.resize(conn, dom, target=target, size=size)
    log.info("%s/%s: pivoted onto %s, %d bytes", dom, target, claim, size)
    return (
        f"block copy into {claim} under the running guest, then pivot; the guest sees {size} bytes"
    )
