"""Live migration of a domain between two libvirt nodes, driven from this client.

The destination definition is the source's migratable XML (same UUID) with
only the disk sources changed; slices left by a block copy are dropped, as
the destination volume is the disk's full size. With `copy_disks`, qemu
copies those disks into the destination's (NBD mirror) while the guest runs,
then moves memory; the guest pauses only for the final switch (the downtime).

When this client dies mid-migration libvirt cancels the job itself (it ties a
client-driven migration to the client's connection): the guest goes on
running on the source and the destination domain is removed. `settle`
finishes the picture after any failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

from csi_vm import errors
from launcher import blockjobs, libvirt_conn
from launcher.libvirt_conn import libvirt

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class NewSource:
    path: str
    block: bool


@dataclasses.dataclass(frozen=True, kw_only=True)
class Stats:
    downtime_ms: int  # the guest's pause at the switch, as qemu measured it
    disk_bytes: int  # bytes the storage copy moved (0 on shared storage)
    memory_bytes: int
    duration_ms: int


class Where(enum.StrEnum):
    SOURCE = "source"
    TARGET = "target"
    BOTH = "both"
    NOWHERE = "nowhere"


def dest_xml(xml: str, sources: Mapping[str, NewSource], *, console_log: str = "") -> str:
    """The source's migratable XML with the disks of `sources` (by target) pointing elsewhere.

    `console_log`: the serial log's file on the destination node.
    """
    # libvirtd's own answer, not outside input: the stdlib parser is fine here
    root = ElementTree.fromstring(xml)  # noqa: S314
    for log_source in root.findall("devices/serial/source") if console_log else []:
        log_source.set("path", console_log)
    for disk in root.iter("disk"):
        target = disk.find("target")
        new = sources.get(target.get("dev", "") if target is not None else "")
        if new is None:
            continue
        disk.set("type", "block" if new.block else "file")
        old = disk.find("source")
        if old is not None:
            disk.remove(old)
        source = ElementTree.Element("source", {"dev" if new.block else "file": new.path})
        disk.insert(1, source)
    return ElementTree.tostring(root, encoding="unicode")


def migrate(
    src: libvirt_conn.Connection,
    dst: libvirt_conn.Connection,
    name: str,
    *,
    sources: Mapping[str, NewSource],
    copy_disks: Sequence[str] = (),
    console_log: str = "",
    bandwidth_mib_s: int = 0,
) -> Stats:
    """Live-migrate `name` from src to dst; on return it runs on dst only."""
    xml = dest_xml(src.xml_desc(name, migratable=True), sources, console_log=console_log)
    params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_DEST_XML: xml}
    # PERSIST_DEST: the VM stays defined on its new node; the source's
    # definition is removed by the caller once the records say "moved".
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PERSIST_DEST
    if copy_disks:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(copy_disks)
    if bandwidth_mib_s:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth_mib_s
    began = time.monotonic()
    _cancellable(src, name, lambda: src.migrate(name, dest=dst, params=params, flags=flags))
    duration_ms = int((time.monotonic() - began) * 1000)
    return _stats(dst, src, name, duration_ms=duration_ms)


def migrate_p2p(
    src: libvirt_conn.Connection,
    name: str,
    *,
    dconnuri: str,
    migrate_uri: str,
    copy_disks: Sequence[str] = (),
    tls: bool = True,
    bandwidth_mib_s: int = 0,
    cancelled: Callable[[], bool] = lambda: False,
) -> int:
    """Live-migrate `name` peer to peer: src's libvirtd to the one at `dconnuri`; the ms taken.

    The destination's definition is the source's own: between launcher Pods
    every disk and the console have the same paths in both. `migrate_uri`:
    where the source's qemu sends memory (and, with `copy_disks`, the disks'
    NBD mirror), the destination's address, which its certificate names.
    With `tls` both streams use TLS with the certificates in qemu's default
    x509 directory. `bandwidth_mib_s`: a cap (0: none). `cancelled` is asked
    every second: True aborts the job.
    On success the source's domain is left shut off (reason "migrated").
    """
    params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_URI: migrate_uri}
    flags = (
        libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_PERSIST_DEST
    )
    # A guest that dirties memory about as fast as the link (or the cap)
    # carries it would never finish: qemu slows its vCPUs down until it does.
    flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if tls:
        flags |= libvirt.VIR_MIGRATE_TLS
    if copy_disks:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(copy_disks)
    if bandwidth_mib_s:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = bandwidth_mib_s
    began = time.monotonic()
    _cancellable(
        src, name,
        lambda: src.migrate_to_uri(name, dconnuri=dconnuri, params=params, flags=flags),
        cancelled=cancelled,
    )  # fmt: skip
    return int((time.monotonic() - began) * 1000)


def p2p_outcome(src: libvirt_conn.Connection, name: str) -> Where | None:
    """Where a peer-to-peer migration left the guest, from the source alone; None: not over.

    The source's libvirtd ran the job: while it runs the answer is None; a
    failed one leaves the guest running (or resumed) on the source; a
    finished one leaves the source's domain shut off "migrated" (or gone).
    A paused guest with no job is not decided here either: it may run on
    the destination already.
    """
    try:
        state = src.status(name)
        # Only a domain that runs has a job (libvirt refuses to ask a shut-off one).
        if state.active and src.job_active(name):
            return None
    except errors.NotFound:
        return Where.TARGET
    if state.state is libvirt_conn.DomainState.RUNNING:
        return Where.SOURCE
    if state.state is libvirt_conn.DomainState.SHUTOFF and state.reason == "migrated":
        return Where.TARGET
    if not state.active:
        return Where.NOWHERE
    return None


def _cancellable(
    src: libvirt_conn.Connection,
    name: str,
    call: Callable[[], None],
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> None:
    """Run the (blocking) migration call in a thread, so Ctrl-C or SIGTERM can cancel it.

    A signal only reaches Python code between calls; here it interrupts the
    wait, the job is aborted, and the call returns with the failure. So
    does `cancelled()` turning True (asked about once a second).
    """
    failure: list[BaseException] = []

    def work() -> None:
        try:
            call()
        except BaseException as err:  # handed to the waiting thread
            failure.append(err)

    worker = threading.Thread(target=work, name=f"migrate-{name}", daemon=True)
    worker.start()
    asked = time.monotonic()
    try:
        while worker.is_alive():
            worker.join(0.1)
            if worker.is_alive() and time.monotonic() - asked >= 1.0:
                asked = time.monotonic()
                if cancelled():
                    log.warning("%s: migration cancelled: aborting it", name)
                    with contextlib.suppress(errors.CsiVmError):
                        src.call(name, "abortJob", "abortJob")
    except BaseException:
        log.warning("%s: migration interrupted: cancelling it", name)
        with contextlib.suppress(errors.CsiVmError):
            src.call(name, "abortJob", "abortJob")
        worker.join()
        raise
    if failure:
        raise failure[0]


def _stats(
    dst: libvirt_conn.Connection, src: libvirt_conn.Connection, name: str, *, duration_ms: int
) -> Stats:
    """Completed-job statistics: the destination gets the downtime, the source the disks."""
    found: list[dict[str, Any]] = []
    for conn in (dst, src):
        try:
            found.append(
                conn.call(name, "jobStats", "jobStats", libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
            )
        except errors.CsiVmError as err:
            log.info("%s: no completed job statistics on %s: %s", name, conn.uri, err)
    log.debug("%s: migration statistics %s", name, found)

    def most(key: str, default: int = 0) -> int:
        return max((int(s[key]) for s in found if key in s), default=default)

    return Stats(
        downtime_ms=most("downtime", -1),
        disk_bytes=most("disk_processed") or most("disk_total"),
        memory_bytes=most("memory_processed"),
        duration_ms=duration_ms,
    )


def _active(conn: libvirt_conn.Connection, name: str) -> bool:
    try:
        return conn.status(name).active
    except errors.NotFound:
        return False


def where(src: libvirt_conn.Connection, dst: libvirt_conn.Connection, name: str) -> Where:
    on_src, on_dst = _active(src, name), _active(dst, name)
    if on_src and on_dst:
        return Where.BOTH  # only mid-migration: the destination is still paused
    if on_dst:
        return Where.TARGET
    return Where.SOURCE if on_src else Where.NOWHERE


def settle_on_source(src: libvirt_conn.Connection, dst: libvirt_conn.Connection, name: str) -> None:
    """After a failed or abandoned migration: the guest runs on the source, nothing on dst.

    Refuses (DataSafetyError) when the guest already runs on the destination
    only: then the caller must move it back instead.
    """
    with contextlib.suppress(errors.CsiVmError):  # no job to abort: the usual case
        src.call(name, "abortJob", "abortJob")
    if where(src, dst, name) is Where.TARGET:
        raise errors.DataSafetyError(f"{name} runs on {dst.uri} only: it cannot be settled back")
    _drop_disk_mirrors(src, name)
    dst.destroy(name)
    dst.undefine(name)
    state = src.status(name)
    if state.state is libvirt_conn.DomainState.PAUSED:
        src.call(name, "resume", "resume")
    if not src.status(name).active:
        raise errors.DataSafetyError(f"{name} runs on neither node after a failed migration")


#: How long a disk mirror left by a migration may take to go once cancelled.
_MIRROR_GONE_S = 30.0


def _drop_disk_mirrors(src: libvirt_conn.Connection, name: str) -> None:
    """Cancel the disk mirrors a migration left on the source, and wait until they are gone.

    A libvirtd restarted mid-migration cancels the migration's mirrors in the
    background while it recovers the domain: abortJob then finds no job, yet
    a mirror may still be listed for a while.
    """
    if src.status(name).active:
        blockjobs.cancel_all(src, name, timeout=_MIRROR_GONE_S)
