"""Work on the disks of a running domain: resize, point-in-time backup, copy and pivot.

Each function is one libvirt job, waited for by polling (no event loop), and
leaves nothing running when it raises: a failed backup or copy is aborted, so
the guest keeps its original disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree import ElementTree

from csi_vm import errors
from launcher import domain, libvirt_conn
from launcher.libvirt_conn import libvirt

log = logging.getLogger(__name__)

#: polling interval for jobs; short, so a finished job is seen quickly
_POLL_S = 0.05
#: a copy of a small disk under TCG takes seconds; this only guards a hung job
DEFAULT_TIMEOUT_S = 600.0
#: how long an aborted job may take to end (qemu cancels it and closes its target)
_ABORT_WAIT_S = 60.0

Sleep = Callable[[float], None]


def resize(conn: libvirt_conn.Connection, name: str, *, target: str, size: int) -> None:
    """Tell qemu (and so the guest) that the disk is now `size` bytes."""
    conn.call(
        name, "blockResize", "blockResize", target, size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES
    )


def capacity(conn: libvirt_conn.Connection, name: str, *, target: str) -> int:
    """The disk's size as qemu sees it."""
    return int(conn.call(name, "blockInfo", "blockInfo", target, 0)[0])


def _target_xml(path: str, *, block: bool) -> str:
    kind = "block" if block else "file"
    attr = "dev" if block else "file"
    return f"type='{kind}'><driver type='raw'/><target {attr}={_quoteattr(path)}/>"


def _quoteattr(value: str) -> str:
    # xml.sax.saxutils imports urllib.request and with it ssl and http.client:
    # imported here, not by every command that imports the flows.
    from xml.sax import saxutils  # noqa: PLC0415

    return saxutils.quoteattr(value)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackupTarget:
    target: str  # the guest's disk, e.g. vda
    dest: str  # an existing device or file, at least as large
    block: bool


def backup_begin(
    conn: libvirt_conn.Connection, name: str, *, disks: Sequence[BackupTarget]
) -> None:
    """Start one push-mode backup of several disks (libvirt runs one backup per domain).

    The point in time is when this returns, the same for every disk: qemu
    copies them as they were then (copy-before-write) while the guest keeps
    writing. `backup_wait` waits for the copy.
    """
    entries = "".join(
        f"<disk name='{d.target}' backup='yes' {_target_xml(d.dest, block=d.block)}</disk>"
        for d in disks
    )
    xml = f"<domainbackup mode='push'><disks>{entries}</disks></domainbackup>"
    flags = libvirt.VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL
    conn.call(name, "backupBegin", "backupBegin", xml, None, flags)


def backup_wait(
    conn: libvirt_conn.Connection,
    name: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    sleep: Sleep = time.sleep,
) -> dict[str, Any]:
    """Wait for the backup `backup_begin` started; aborted if the wait fails."""
    try:
        return _wait_domain_job(conn, name, timeout=timeout, sleep=sleep)
    except BaseException:
        # The wait's own failure is the one to report; the rollback aborts again.
        with contextlib.suppress(errors.CsiVmError):
            abort_job(conn, name, timeout=_ABORT_WAIT_S, sleep=sleep)
        raise


def _wait_domain_job(
    conn: libvirt_conn.Connection, name: str, *, timeout: float, sleep: Sleep
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while conn.call(name, "jobInfo", "jobInfo")[0] != libvirt.VIR_DOMAIN_JOB_NONE:
        if time.monotonic() > deadline:
            raise errors.OperationFailed(f"job on {name} did not finish within {timeout:.0f} s")
        sleep(_POLL_S)
    stats: dict[str, Any] = conn.call(
        name, "jobStats", "jobStats", libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED
    )
    if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
        raise errors.OperationFailed(
            f"job on {name} failed", hint=str(stats.get("errmsg") or stats)
        )
    return stats


def abort_job(
    conn: libvirt_conn.Connection,
    name: str,
    *,
    timeout: float = _ABORT_WAIT_S,
    sleep: Sleep = time.sleep,
) -> None:
    """Abort the domain's job (a backup) and wait until it is gone; none running is no error.

    libvirt answers the abort before qemu has cancelled the job and closed
    its target: until then the target's device stays busy, and the
    unpublish that follows in a rollback would fail on it.
    """
    try:
        conn.call(name, "abortJob", "abortJob")
    except errors.NotFound:
        return  # no domain, nothing holds the target
    except errors.CsiVmError as err:
        log.info("%s: abortJob: %s (the job may have ended already)", name, err)
    deadline = time.monotonic() + timeout
    while conn.call(name, "jobInfo", "jobInfo")[0] != libvirt.VIR_DOMAIN_JOB_NONE:
        if time.monotonic() > deadline:
            raise errors.OperationFailed(
                f"the job on {name} did not end within {timeout:.0f} s of its abort"
            )
        sleep(_POLL_S)


def copy_and_pivot(
    conn: libvirt_conn.Connection,
    name: str,
    *,
    target: str,
    dest: str,
    block: bool,
    timeout: float = DEFAULT_TIMEOUT_S,
    sleep: Sleep = time.sleep,
) -> None:
    """Mirror a disk into `dest` while the guest runs, then switch the guest to it.

    qemu mirrors only into a target of the source's size, so a larger `dest`
    is given as a slice of the source's size; `resize` afterwards needs
    `unslice` first. Until the pivot the guest uses its original disk; on any
    failure the job is cancelled and it keeps using it.
    """
    kind, attr = ("block", "dev") if block else ("file", "file")
    size = capacity(conn, name, target=target)
    xml = (
        f"<disk type='{kind}'><driver type='raw'/><source {attr}={_quoteattr(dest)}>"
        f"<slices><slice type='storage' offset='0' size='{size}'/></slices></source></disk>"
    )
    # REUSE_EXT: dest is a prepared volume; TRANSIENT_JOB: libvirt needs it
    # for persistent domains (the definition is rewritten at the next start).
    flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
    conn.call(name, "blockCopy", "blockCopy", target, xml, None, flags)
    try:
        _wait_mirror_ready(conn, name, target=target, timeout=timeout, sleep=sleep)
        conn.call(name, "pivot", "blockJobAbort", target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT)
        _wait_block_job_gone(conn, name, target=target, timeout=timeout, sleep=sleep)
    except BaseException:
        try:
            conn.call(name, "cancel blockCopy", "blockJobAbort", target, 0)
        except errors.CsiVmError as err:
            log.info("%s: cancelling the copy of %s: %s", name, target, err)
        raise


def unslice(conn: libvirt_conn.Connection, name: str, *, target: str) -> None:
    """Let qemu see the whole device behind a disk that `copy_and_pivot` sliced.

    This libvirt (9.x) neither removes a slice nor resizes a sliced disk, so
    the raw node is reopened without offset and size over QMP. Node names
    follow libvirt's scheme, libvirt-<source index>-format/-storage.
    """
    source = _disk_element(conn, name, target).find("source")
    if source is None or source.find("slices") is None:
        return
    index = source.get("index")
    options = {
        "driver": "raw",
        "node-name": f"libvirt-{index}-format",
        "file": f"libvirt-{index}-storage",
        "read-only": False,
    }
    conn.qemu_monitor(name, {"execute": "blockdev-reopen", "arguments": {"options": [options]}})


def _wait_mirror_ready(
    conn: libvirt_conn.Connection, name: str, *, target: str, timeout: float, sleep: Sleep
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        info = conn.call(name, "blockJobInfo", "blockJobInfo", target, 0)
        if not info:
            raise errors.OperationFailed(f"the copy of {name}/{target} ended before it was ready")
        # ready: the mirror caught up (cur == end) and follows every new write
        if info["end"] and info["cur"] == info["end"] and _ready(conn, name, target):
            return
        if time.monotonic() > deadline:
            raise errors.OperationFailed(f"the copy of {name}/{target} was not ready in time")
        sleep(_POLL_S)


def _ready(conn: libvirt_conn.Connection, name: str, target: str) -> bool:
    """libvirt marks a copy that follows every write with <mirror ready='yes'>."""
    disk = _disk_element(conn, name, target)
    mirror = disk.find("mirror")
    return mirror is not None and mirror.get("ready") == "yes"


def _disk_element(conn: libvirt_conn.Connection, name: str, target: str) -> ElementTree.Element:
    xml = str(conn.call(name, "XMLDesc", "XMLDesc", 0))
    # libvirtd's own answer, not outside input: the stdlib parser is fine here
    for disk in ElementTree.fromstring(xml).iter("disk"):  # noqa: S314
        tgt = disk.find("target")
        if tgt is not None and tgt.get("dev") == target:
            return disk
    raise errors.NotFound(f"domain {name} has no disk {target}")


def _wait_block_job_gone(
    conn: libvirt_conn.Connection, name: str, *, target: str, timeout: float, sleep: Sleep
) -> None:
    deadline = time.monotonic() + timeout
    while conn.call(name, "blockJobInfo", "blockJobInfo", target, 0):
        if time.monotonic() > deadline:
            raise errors.OperationFailed(f"the block job on {name}/{target} did not end")
        sleep(_POLL_S)


def disk_source(conn: libvirt_conn.Connection, name: str, *, target: str) -> str:
    """Where the domain's disk `target` is now (after a pivot: the new volume)."""
    src = _disk_element(conn, name, target).find("source")
    return "" if src is None else str(src.get("dev") or src.get("file") or "")


#: the longest one guest-agent command may take. A freeze first flushes the
#: guest's dirty data, which takes a second or two under TCG; libvirt's own
#: default is to wait forever, which would leave a snapshot (and the frozen
#: guest) hanging on an agent that stopped answering.
AGENT_TIMEOUT_S = 10


#: how long a freeze that did not answer is followed by thaws. The agent works
#: through its commands in turn: a thaw is answered once the late freeze is
#: done, so a freeze the guest needs longer for (a large flush) is thawed
#: within this bound, and an agent stalled past it leaves the flow pending.
SETTLE_S = 60.0
#: the least time between two thaws when one fails at once (agent channel
#: closed): a thaw that waits for the agent's answer is asked again at once
_RETHAW_GAP_S = 1.0

#: the guest's filesystems after `freeze`, as written to the flow journal
FROZEN, NOT_FROZEN, UNKNOWN = "frozen", "not frozen", "unknown"


@dataclasses.dataclass(frozen=True)
class Freeze:
    state: str  # FROZEN, NOT_FROZEN (the agent said so), or UNKNOWN (no thaw answered)
    why: str  # how many filesystems were frozen, or why none is

    @property
    def frozen(self) -> bool:
        return self.state == FROZEN


def freeze(
    conn: libvirt_conn.Connection,
    name: str,
    *,
    timeout_s: int = AGENT_TIMEOUT_S,
    settle_s: float = SETTLE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Freeze:
    """Freeze the guest's filesystems through its agent, or say why they are not frozen.

    A guest whose agent is not connected is not asked. An agent that does not
    answer a harmless command first is not asked to freeze either: libvirt
    gives up on a freeze after the time-out, but the agent, once it runs again,
    still freezes, and a thaw libvirt sends meanwhile never reaches it (libvirt
    first waits for the agent to answer a sync), so the guest would stay frozen.
    An agent that fails or does not answer the freeze itself may still have
    frozen some filesystems (or do it late): it is asked to thaw until one thaw
    answers, for up to `settle_s`; if none does, the state is UNKNOWN.
    """
    if not agent_connected(conn, name):
        return Freeze(NOT_FROZEN, "no guest agent is connected to the VM's agent channel")
    try:
        conn.call(name, "agent timeout", "agentSetResponseTimeout", timeout_s, 0)
        conn.call(name, "guest agent clock", "getTime", 0)
    except errors.NotFound:
        raise
    except errors.CsiVmError as err:
        log.warning("%s: guest agent not asked to freeze: %s", name, err)
        how = _how(err, timeout_s)
        return Freeze(
            NOT_FROZEN, f"the guest agent {how} ({err.message}); it was not asked to freeze"
        )
    try:
        count = conn.call(name, "fsFreeze", "fsFreeze", None, 0)
    except errors.NotFound:
        raise
    except errors.CsiVmError as err:
        log.warning("%s: guest agent freeze failed (%s): thawing", name, err)
        failed = f"the guest agent's freeze {_how(err, timeout_s)} ({err.message})"
        last = _settle(conn, name, bound_s=settle_s, clock=clock, sleep=sleep)
        return _after_failed_freeze(failed, last, bound_s=settle_s)
    return Freeze(FROZEN, f"{count} filesystem(s) frozen by the guest agent")


def _after_failed_freeze(failed: str, last: errors.CsiVmError | None, *, bound_s: float) -> Freeze:
    if last is None:
        return Freeze(
            NOT_FROZEN, f"{failed}; a thaw that followed answered: no filesystem is left frozen"
        )
    return Freeze(
        UNKNOWN,
        f"{failed}; no thaw answered within {bound_s:.0f} s after it ({last.message}): "
        "the guest may still be frozen",
    )


def _how(err: errors.CsiVmError, timeout_s: int) -> str:
    return (
        f"did not answer within {timeout_s} s" if isinstance(err, errors.Unreachable) else "failed"
    )


def _settle(
    conn: libvirt_conn.Connection,
    name: str,
    *,
    bound_s: float,
    clock: Callable[[], float],
    sleep: Sleep,
) -> errors.CsiVmError | None:
    """Thaw until the agent answers one thaw (None), or the last error after `bound_s`.

    A thaw of a thawed guest answers too, so an answer means no filesystem is
    frozen. Each thaw waits for the agent's answer (up to its time-out): an
    agent still busy with a late freeze answers the thaw once it is done.
    """
    deadline = clock() + bound_s
    while True:
        began = clock()
        try:
            thaw(conn, name)
            return None
        except errors.NotFound:
            raise
        except errors.CsiVmError as err:
            # one line a second while libvirt refuses at once: the result says it once
            log.info("%s: thaw after a failed freeze: %s", name, err)
            last = err
        if clock() >= deadline:
            return last
        if (pause := min(began + _RETHAW_GAP_S, deadline) - clock()) > 0:
            sleep(pause)


def agent_connected(conn: libvirt_conn.Connection, name: str) -> bool:
    """libvirt shows state='connected' on the agent channel while qemu-ga has it open."""
    xml = str(conn.call(name, "XMLDesc", "XMLDesc", 0))
    # libvirtd's own answer, not outside input: the stdlib parser is fine here
    for target in ElementTree.fromstring(xml).iterfind("devices/channel/target"):  # noqa: S314
        if target.get("name") == domain.AGENT_CHANNEL:
            return target.get("state") == "connected"
    return False


def thaw(conn: libvirt_conn.Connection, name: str) -> None:
    conn.call(name, "fsThaw", "fsThaw", None, 0)


def cancel(conn: libvirt_conn.Connection, name: str, *, target: str) -> None:
    """Cancel a block job left running on the disk (by a process that died); none is fine."""
    if conn.call(name, "blockJobInfo", "blockJobInfo", target, 0):
        conn.call(name, "cancel block job", "blockJobAbort", target, 0)


def cancel_all(conn: libvirt_conn.Connection, name: str, *, timeout: float) -> None:
    """Cancel every disk's block job and wait until libvirt lists none.

    A job libvirt is already cancelling (after a libvirtd restart, in the
    background) may refuse the abort: waiting for it to go is what counts.
    """
    xml = str(conn.call(name, "XMLDesc", "XMLDesc", 0))
    # libvirtd's own answer, not outside input: the stdlib parser is fine here
    found = (disk.find("target") for disk in ElementTree.fromstring(xml).iter("disk"))  # noqa: S314
    for target in [t.get("dev", "") for t in found if t is not None and t.get("dev")]:
        try:
            cancel(conn, name, target=target)
        except errors.CsiVmError as err:
            log.info("%s/%s: block job abort refused (%s); waiting for it to go", name, target, err)
        _wait_block_job_gone(conn, name, target=target, timeout=timeout, sleep=time.sleep)
