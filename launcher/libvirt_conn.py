"""The launcher's one door to libvirt: every libvirt call goes through `Connection`.

libvirt-python is untyped; this module turns its answers into typed values and
its `libvirtError` into the csi-vm tree, by error code (never by message):

    no such domain                      -> NotFound
    domain exists with another UUID     -> AlreadyExists
    bad XML or argument                 -> InvalidInput
    wrong state (e.g. not running)      -> Rejected
    not supported by this qemu/libvirt  -> Unsupported
    job lock timeout                    -> Busy
    daemon unreachable, RPC failure     -> Unreachable
    anything else                       -> OperationFailed

A restarted libvirtd (qemu keeps running while the daemon is gone, and the
new daemon reconnects to it) breaks every open connection. `Connection`
then opens a new one, waiting up to `RECONNECT_S` for the daemon to come
back, and repeats the failed call if it only reads: a job polled across the
restart is seen to its end. A call that changes something is not repeated
blindly (it may have happened); it fails, on a connection that works again,
so the caller's cleanup can run.

No call waits for libvirtd forever (see `launcher.libvirt_deadline`): each
one, opening a connection included, gets `CALL_S` to answer, and keepalive
closes a connection whose daemon stops answering pings for about
`KEEPALIVE_INTERVAL_S * (KEEPALIVE_COUNT + 1)` seconds, which bounds the calls
that may rightly last longer (a migration). A call past its deadline raises
`Unreachable`, and the connection is dropped: the next call opens a new one
(the late call's own connection is closed once that call ends).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from xml.etree import ElementTree

from csi_vm import errors
from launcher import libvirt_deadline

T = TypeVar("T")

log = logging.getLogger(__name__)

#: the URI that scripts/libvirtd-start serves
SYSTEM_URI = "qemu:///system"
#: how long a broken connection waits for libvirtd to answer again; a
#: restart takes 1-3 s here, a distribution's service restart under 10 s
RECONNECT_S = 30.0
_RECONNECT_POLL_S = 0.25
#: the longest one call may wait for libvirtd's answer; a start, destroy or
#: guest-agent freeze takes seconds, a monitor or job query milliseconds
CALL_S = 60.0
#: keepalive: a ping every interval, the connection closed after this many
#: unanswered ones (libvirtd's own defaults for its clients, 5 s and 5)
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 5
_START_HINT = "start it with scripts/libvirtd-start (or scripts/libvirt-node start NAME)"
_STUCK_HINT = "libvirtd takes connections but answers nothing: is it stopped or stuck?"
#: calls repeated after a reconnect: they only read, or (defineXML, and
#: destroy and undefine as written below) give the same result when done twice
_REPEATABLE = frozenset({
    "listAllDomains", "getCapabilities", "getVersion", "state", "XMLDesc", "jobInfo",
    "jobStats", "blockJobInfo", "blockInfo", "exists", "defineXML", "destroy", "undefine",
})  # fmt: skip


def _quiet(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; ours are raised instead."""


@functools.cache
def _load() -> Any:
    import libvirt  # noqa: PLC0415 - see _OnFirstUse

    libvirt.registerErrorHandler(_quiet, None)
    # before any connection is opened, or keepalive cannot be turned on
    libvirt_deadline.start_event_loop(libvirt)
    return libvirt


class _OnFirstUse:
    """The libvirt module, imported when first used.

    Only the commands that run VMs talk to libvirt, but the flows import this
    module for all of them: importing libvirt here would add its load time to
    every command.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(_load(), name)

    def __dir__(self) -> list[str]:
        return dir(_load())


#: `libvirt` for this package: attribute access imports the real module
libvirt: Any = _OnFirstUse()


def _codes(*names: str) -> frozenset[int]:
    # getattr: older libvirt-python builds lack some newer codes
    return frozenset(int(getattr(libvirt, n)) for n in names if hasattr(libvirt, n))


@functools.cache
def _by_code() -> tuple[tuple[frozenset[int], type[errors.CsiVmError]], ...]:
    return (
        (_codes("VIR_ERR_NO_DOMAIN", "VIR_ERR_NO_DOMAIN_SNAPSHOT", "VIR_ERR_NO_DOMAIN_BACKUP"),
         errors.NotFound),
        (_codes("VIR_ERR_DOM_EXIST"), errors.AlreadyExists),
        (_codes("VIR_ERR_XML_ERROR", "VIR_ERR_XML_DETAIL", "VIR_ERR_INVALID_ARG"),
         errors.InvalidInput),
        (_codes("VIR_ERR_OPERATION_INVALID"), errors.Rejected),
        (_codes("VIR_ERR_NO_SUPPORT", "VIR_ERR_OPERATION_UNSUPPORTED",
                "VIR_ERR_ARGUMENT_UNSUPPORTED", "VIR_ERR_CONFIG_UNSUPPORTED"),
         errors.Unsupported),
        (_codes("VIR_ERR_OPERATION_TIMEOUT"), errors.Busy),
        (_codes("VIR_ERR_NO_CONNECT", "VIR_ERR_RPC", "VIR_ERR_AGENT_UNRESPONSIVE"),
         errors.Unreachable),
    )  # fmt: skip


def map_error(err: libvirt.libvirtError, *, what: str) -> errors.CsiVmError:
    """The csi-vm error for a libvirt error; callers `raise ... from err`."""
    code = err.get_error_code()
    message = f"{what}: {err.get_error_message() or err}"
    for codes, cls in _by_code():
        if code in codes:
            return cls(message)
    if err.get_error_domain() == libvirt.VIR_FROM_RPC:
        return errors.Unreachable(message, hint="is libvirtd running? (scripts/libvirtd-start)")
    return errors.OperationFailed(message)


class DomainState(enum.StrEnum):
    NOSTATE = "nostate"
    RUNNING = "running"
    BLOCKED = "blocked"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"  # shutting down
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"


@functools.cache
def _states() -> dict[int, DomainState]:
    return {int(getattr(libvirt, f"VIR_DOMAIN_{s.name}")): s for s in DomainState}


@dataclasses.dataclass(frozen=True)
class DomainStatus:
    state: DomainState
    reason: str  # libvirt's reason for the state, e.g. "booted", "destroyed", "crashed"

    @property
    def active(self) -> bool:
        return self.state not in (DomainState.SHUTOFF, DomainState.CRASHED)

    @property
    def crashed(self) -> bool:
        """The guest or its qemu process died without being asked to stop."""
        return self.state == DomainState.CRASHED or self.reason in ("crashed", "failed")


@functools.cache
def _reason_names() -> dict[tuple[DomainState, int], str]:
    """libvirt's per-state reason codes by name, e.g. (SHUTOFF, 3) -> "crashed"."""
    names = {}
    for state in DomainState:
        prefix = f"VIR_DOMAIN_{state.name}_"
        for name in dir(libvirt):
            if name.startswith(prefix) and name != f"{prefix}LAST":
                names[state, int(getattr(libvirt, name))] = name.removeprefix(prefix).lower()
    return names


def _open_handle(uri: str, *, wait_s: float) -> Any:
    """libvirt.open, tried again every quarter second for `wait_s` while the daemon is away."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _open_once(uri)
        except (libvirt.libvirtError, libvirt_deadline.Overdue) as err:
            if time.monotonic() >= deadline:
                waited = f" (waited {wait_s:.0f} s)" if wait_s else ""
                reason = _reason(err)
                stuck = isinstance(err, libvirt_deadline.Overdue)
                raise errors.Unreachable(
                    f"cannot connect to libvirt at {uri}{waited}: {reason}",
                    hint=_STUCK_HINT if stuck else _START_HINT,
                ) from err
        time.sleep(_RECONNECT_POLL_S)


def _reason(err: Exception) -> object:
    if isinstance(err, libvirt_deadline.Overdue):
        return f"libvirtd did not answer within {CALL_S:.0f} s"
    return err.get_error_message() or err  # type: ignore[attr-defined]  # a libvirtError


def _close_late(handle: Any) -> None:
    """A connection that opened after its caller gave up: nobody else will close it."""
    if handle is not None:
        with contextlib.suppress(libvirt.libvirtError):
            handle.close()


def _open_once(uri: str) -> Any:
    """One bounded attempt to connect, with keepalive turned on."""
    handle = libvirt_deadline.bounded(libvirt.open, (uri,), limit=CALL_S, late=_close_late)
    try:
        # 1: the daemon does not do keepalive; -1 / an error: this driver has
        # no daemon at all (test:///); calls are still bounded by CALL_S
        libvirt_deadline.bounded(
            handle.setKeepAlive,
            (KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT),
            limit=CALL_S,
            late=lambda _value: _close_late(handle),
        )
    except libvirt.libvirtError as err:
        log.debug("%s: no keepalive: %s", uri, err.get_error_message())
    return handle


class Connection:
    """One libvirt connection (one node). Not shared across processes."""

    def __init__(self, uri: str, handle: Any, *, reconnect_s: float | None = None) -> None:
        self.uri = uri
        self._handle = handle
        # read when the connection is made, so a test can shorten the budget
        self._reconnect_s = RECONNECT_S if reconnect_s is None else reconnect_s
        self._call_s = CALL_S
        #: the daemon missed a deadline on this handle: open a new one
        self._dropped = False

    @classmethod
    def open(cls, uri: str = SYSTEM_URI, *, wait_s: float = 0.0) -> Connection:
        """Connect; `wait_s`: keep trying that long (a daemon being restarted)."""
        return cls(uri, _open_handle(uri, wait_s=wait_s))

    def close(self) -> None:
        if self._dropped:
            return  # the late call on it closes it when it ends
        # a daemon that went away, or stopped answering, leaves nothing to wait for
        with contextlib.suppress(libvirt.libvirtError, libvirt_deadline.Overdue):
            libvirt_deadline.bounded(self._handle.close, (), limit=self._call_s)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Connection({self.uri!r})"

    def _call(self, what: str, func: Callable[..., T], *args: Any, limit: float | None = -1.0) -> T:
        """`func(*args)`, bounded by `limit` (-1: `CALL_S`; None: keepalive only)."""
        limit = self._call_s if limit == -1.0 else limit
        handle = self._handle
        if self._dropped:
            # its late call closes it at any moment: a call on it could touch freed memory
            raise errors.Unreachable(f"{what} on {self.uri}: the connection was dropped")
        try:
            return libvirt_deadline.bounded(
                func, args, limit=limit, late=lambda _value: _close_late(handle)
            )
        except libvirt.libvirtError as err:
            raise map_error(err, what=f"{what} on {self.uri}") from err
        except libvirt_deadline.Overdue:
            # the late call still uses this handle: it is closed when it ends
            self._dropped = handle is self._handle
            raise errors.Unreachable(
                f"{what} on {self.uri}: libvirtd did not answer within {limit:.0f} s",
                hint=_STUCK_HINT,
            ) from None

    def _domain(self, name: str) -> Any:
        return self._call(f"domain {name}", self._handle.lookupByName, name)

    def _surviving(self, method: str, once: Callable[[], T]) -> T:
        """Run `once`; when the daemon went away, reconnect and repeat it if it only reads.

        `once` must look its objects up afresh: a domain object of the old
        connection is dead with it.
        """
        if self._dropped:
            self._reconnect()  # a call missed its deadline there: never use it again
        try:
            return once()
        except errors.Unreachable as err:
            if not self._broken():
                raise  # the daemon answered: e.g. an unresponsive guest agent
            log.warning("%s: lost the connection to libvirtd (%s); reconnecting", self.uri, err)
            self._reconnect()
            if method not in _REPEATABLE:
                # It may or may not have happened: the caller's cleanup finds out.
                raise errors.Unreachable(
                    f"{err.message}; libvirtd restarted meanwhile ({method} is not repeated)"
                ) from err
            log.info("%s: reconnected; repeating %s", self.uri, method)
            return once()

    def _broken(self) -> bool:
        if self._dropped:
            return True
        try:
            return not self._handle.isAlive()
        except libvirt.libvirtError:
            return True

    def _reconnect(self) -> None:
        dropped = self._dropped
        old, self._handle = self._handle, _open_handle(self.uri, wait_s=self._reconnect_s)
        self._dropped = False
        if dropped:
            return  # the late call closes it when it ends
        with contextlib.suppress(libvirt.libvirtError):  # dead already: closing only frees it
            old.close()

    # -- node -----------------------------------------------------------------

    def hypervisor_version(self) -> int:
        """qemu's version as libvirt encodes it (major * 1_000_000 + minor * 1000 + micro)."""
        once = lambda: self._call("getVersion", self._handle.getVersion)  # noqa: E731
        return int(self._surviving("getVersion", once))

    def host_uuid(self) -> str:
        """The node's identity: distinct nodes on one machine have distinct UUIDs."""
        once = lambda: self._call("getCapabilities", self._handle.getCapabilities)  # noqa: E731
        caps = str(self._surviving("getCapabilities", once))
        # libvirtd's own answer, not outside input: the stdlib parser is fine here
        uuid = ElementTree.fromstring(caps).findtext("host/uuid")  # noqa: S314
        if not uuid:
            raise errors.OperationFailed(f"{self.uri} reports no host UUID")
        return uuid

    def domain_names(self) -> list[str]:
        def once() -> list[str]:
            domains = self._call("listAllDomains", self._handle.listAllDomains, 0)
            return sorted(str(d.name()) for d in domains)

        return self._surviving("listAllDomains", once)

    # -- domains --------------------------------------------------------------

    def define(self, xml: str) -> str:
        """Define (or redefine) a persistent domain; returns its name."""

        def once() -> str:
            return str(self._call("defineXML", self._handle.defineXML, xml).name())

        return self._surviving("defineXML", once)

    def start(self, name: str) -> None:
        self.call(name, "start", "create")

    def shutdown(self, name: str) -> None:
        """Ask the guest to power off (ACPI); it may ignore the request."""
        self.call(name, "shutdown", "shutdown")

    def destroy(self, name: str) -> None:
        """Stop the domain now (kill qemu); a stopped or unknown domain is no error."""

        def once() -> None:
            try:
                domain = self._domain(name)
                if self._call(f"isActive {name}", domain.isActive):
                    self._call(f"destroy {name}", domain.destroy)
            except (errors.NotFound, errors.Rejected):
                return  # gone, or stopped between the check and the call

        self._surviving("destroy", once)

    def undefine(self, name: str) -> None:
        """Remove the definition; an unknown domain is no error."""

        def once() -> None:
            try:
                domain = self._domain(name)
            except errors.NotFound:
                return
            self._call(f"undefine {name}", domain.undefine)

        self._surviving("undefine", once)

    def exists(self, name: str) -> bool:
        def once() -> bool:
            try:
                self._domain(name)
            except errors.NotFound:
                return False
            return True

        return self._surviving("exists", once)

    def status(self, name: str) -> DomainStatus:
        state, reason = self.call(name, "state", "state")
        known = _states().get(int(state), DomainState.NOSTATE)
        return DomainStatus(known, _reason_names().get((known, int(reason)), f"reason-{reason}"))

    def xml_desc(self, name: str, *, migratable: bool = False) -> str:
        """The domain's XML; `migratable` gives the form a migration destination takes."""
        flags = libvirt.VIR_DOMAIN_XML_MIGRATABLE if migratable else 0
        return str(self.call(name, "XMLDesc", "XMLDesc", flags))

    # -- running domains: resize, freeze, block jobs, migration ----------------
    # Block jobs and migration are in `launcher.blockjobs` and
    # `launcher.migration`; these are the raw calls they are made of.

    def call(self, name: str, what: str, method: str, *args: Any) -> Any:
        """Call a virDomain method on a domain, errors mapped into the csi-vm tree.

        Across a libvirtd restart, methods that only read are repeated on a
        new connection; others fail with Unreachable once it works again.
        """

        def once() -> Any:
            return self._call(f"{what} of {name}", getattr(self._domain(name), method), *args)

        return self._surviving(method, once)

    def migrate(self, name: str, *, dest: Connection, params: dict[str, Any], flags: int) -> None:
        """virDomainMigrate3 from this node to `dest` (the client drives both ends)."""

        def once() -> None:
            domain = self._domain(name)
            what = f"migrate {name} to {dest.uri}"
            # as long as the copy takes: keepalive on both connections bounds it
            self._call(what, domain.migrate3, dest._handle, params, flags, limit=None)

        self._surviving("migrate3", once)

    def migrate_to_uri(
        self, name: str, *, dconnuri: str, params: dict[str, Any], flags: int
    ) -> None:
        """virDomainMigrateToURI3: this libvirtd drives the migration to the one at `dconnuri`.

        Peer to peer: the two daemons talk to each other, this client only
        waits. A client that goes away leaves the job to the daemon.
        """

        def once() -> None:
            domain = self._domain(name)
            what = f"migrate {name} to {dconnuri}"
            self._call(what, domain.migrateToURI3, dconnuri, params, flags, limit=None)

        self._surviving("migrateToURI3", once)

    def job_active(self, name: str) -> bool:
        """Whether a job (a migration, here) runs on the domain now."""
        info = self.call(name, "job", "jobInfo")
        return bool(int(info[0]) != libvirt.VIR_DOMAIN_JOB_NONE)

    def qemu_monitor(self, name: str, command: dict[str, Any]) -> Any:
        """One QMP command, for what this libvirt cannot ask qemu for (see blockjobs.unslice).

        libvirt marks the domain "tainted: custom-monitor"; nothing else changes.
        """

        _load()  # libvirt first: its error handler is set there
        import libvirt_qemu  # noqa: PLC0415 - see _OnFirstUse

        def once() -> Any:
            return self._call(
                f"QMP {command.get('execute')} on {name}",
                libvirt_qemu.qemuMonitorCommand, self._domain(name), json.dumps(command), 0,
            )  # fmt: skip

        return json.loads(self._surviving("qemuMonitorCommand", once)).get("return")
