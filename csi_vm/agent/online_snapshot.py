"""The node agent's side of a CSI snapshot of a VM in its launcher Pod: freeze, then thaw.

See `csi_vm.crd.onlinesnap` for the hand-over with the controller. The
freeze and thaw are the CLI's (`launcher.blockjobs`), sent to the libvirt
of the VM's launcher Pod: a guest agent that does not answer is never asked
to freeze, and a freeze that failed is thawed until a thaw answers. The
guest stays frozen only until its snapshots are cut, at most
`onlinesnap.CUT_WITHIN_S`; a pass that finds it Frozen (this agent was
replaced mid-snapshot) thaws it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from csi_vm import errors
from csi_vm.agent import online_backup, state
from csi_vm.crd import kinds, onlinesnap, vmpod
from csi_vm.crd import models as crd
from launcher import blockjobs, libvirt_conn

log = logging.getLogger("csi_vm.agent")

Json = state.Json
_POLL_S = 0.1
#: a CSI snapshot the controller made: only disks of this strategy are cut inside the freeze
_CSI = "csi-snapshot"


def step(agent: state.Agent, obj: Json) -> None:
    """A snapshot's pass: its freeze around CSI snapshots, its push backup (`online_backup`)."""
    reconcile(agent, obj)
    online_backup.reconcile(agent, obj)


def reconcile(
    agent: state.Agent, obj: Json, *, clock: Callable[[], float] = time.monotonic
) -> None:
    """Freeze the guest when asked; thaw it once its snapshots are cut."""
    online = onlinesnap.of(obj)
    if agent.launcher_dir is None or online.get("nodeName") != agent.node:
        return
    if online.get("phase") not in (onlinesnap.REQUESTED, onlinesnap.FROZEN):
        return
    meta, spec = crd.meta(obj), crd.spec(obj, crd.SnapshotSpec)
    with agent.locks.hold(meta.namespace, spec.vm):
        try:
            obj = agent.objs.get(kinds.SNAPSHOT, meta.name, namespace=meta.namespace)
        except errors.NotFound:
            return
        dom = vmpod.domain_name(meta.namespace, spec.vm)
        uri = agent.launcher_uri(agent.launcher_dir / dom)
        try:
            with libvirt_conn.Connection.open(uri) as conn:
                _step(agent, conn, obj, dom=dom, clock=clock)
        except errors.NotFound as err:
            # The guest stopped: the controller snapshots the stopped VM instead.
            log.info("%s: no running guest to freeze (%s)", dom, err)


def _step(
    agent: state.Agent,
    conn: libvirt_conn.Connection,
    obj: Json,
    *,
    dom: str,
    clock: Callable[[], float],
) -> None:
    if onlinesnap.phase(obj) == onlinesnap.REQUESTED:
        got = blockjobs.freeze(conn, dom)
        if got.state == blockjobs.UNKNOWN:
            _tell(agent, obj, phase=onlinesnap.FAILED, consistency="", reason=got.why)
            return
        if not got.frozen:
            _tell(
                agent, obj, phase=onlinesnap.NOT_FROZEN,
                consistency=onlinesnap.CRASH_CONSISTENT, reason=got.why,
            )  # fmt: skip
            return
        obj = _tell(
            agent, obj, phase=onlinesnap.FROZEN, consistency=onlinesnap.CONSISTENT, reason=got.why
        )
    else:
        log.warning("%s: found frozen by an earlier agent: thawing once the snapshot is cut", dom)
    cut = _wait_cut(agent, obj, deadline=clock() + onlinesnap.CUT_WITHIN_S, clock=clock)
    try:
        blockjobs.thaw(conn, dom)
    except errors.NotFound:
        raise
    except errors.CsiVmError as err:
        # Still Frozen: the next pass (a resync at the latest) thaws again.
        log.warning("%s: thaw failed (%s): the next pass thaws again", dom, err)
        return
    if cut:
        _tell(agent, obj, phase=onlinesnap.THAWED, consistency=onlinesnap.CONSISTENT,
              reason=str(onlinesnap.of(obj).get("reason") or ""))  # fmt: skip
        return
    why = (
        f"the CSI snapshots were not all taken within {onlinesnap.CUT_WITHIN_S:.0f} s "
        "of the freeze: the guest was thawed and the snapshot given up"
    )
    _tell(agent, obj, phase=onlinesnap.FAILED, consistency="", reason=why)


def csi_disks(obj: Json) -> list[str]:
    """The disks whose strategy (recorded by the controller) is a CSI snapshot."""
    entries = (obj.get("status") or {}).get("disks") or ()
    return [str(d.get("name")) for d in entries if d.get("strategy") == _CSI]


def _wait_cut(
    agent: state.Agent, obj: Json, *, deadline: float, clock: Callable[[], float]
) -> bool:
    """Whether every CSI snapshot of ``obj`` was cut before ``deadline``."""
    meta = crd.meta(obj)
    names = [onlinesnap.volume_snapshot_name(meta.name, d) for d in csi_disks(obj)]
    while not _all_cut(agent, meta.namespace, names):
        if clock() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _all_cut(agent: state.Agent, namespace: str, names: Sequence[str]) -> bool:
    for name in names:
        try:
            made = agent.objs.get(kinds.VOLUME_SNAPSHOT, name, namespace=namespace)
        except errors.NotFound:
            return False  # the controller has not made it yet
        if not onlinesnap.is_cut(made):
            return False
    return True


def _tell(agent: state.Agent, obj: Json, *, phase: str, consistency: str, reason: str) -> Json:
    fields = {onlinesnap.FIELD: {"phase": phase, "consistency": consistency, "reason": reason}}
    written = state.write(agent, kinds.SNAPSHOT, obj, fields=fields, conditions=[])
    warning = phase == onlinesnap.FAILED
    agent.events.record(obj, reason=f"Online{phase}", message=reason, warning=warning)
    log.info("snapshot %s/%s: %s: %s", crd.meta(obj).namespace, crd.meta(obj).name, phase, reason)
    return written
