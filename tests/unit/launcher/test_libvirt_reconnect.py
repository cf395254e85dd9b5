"""A libvirt connection across a daemon restart, with fake handles (no libvirtd needed).

Reads are repeated on a new connection, changes are not (they may have
happened) but leave a working connection behind, an error the daemon itself
answered is not taken for a restart, and a daemon that does not come back
within the budget is reported as unreachable.
"""

from __future__ import annotations

from typing import Any

import libvirt
import pytest

from csi_vm import errors
from launcher import libvirt_conn

pytestmark = pytest.mark.timeout(10)


def _error(code: int, domain: int, message: str) -> libvirt.libvirtError:
    err = libvirt.libvirtError(message)
    err.err = (code, domain, message, 2, None, None, None, 0, 0)
    return err


def _lost() -> libvirt.libvirtError:
    return _error(libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_FROM_RPC, "End of file while reading")


class FakeDomain:
    def __init__(self, conn: FakeHandle) -> None:
        self.conn = conn

    def jobInfo(self) -> list[int]:
        self.conn.check()
        return [libvirt.VIR_DOMAIN_JOB_NONE]

    def blockJobAbort(self, disk: str, flags: int) -> None:
        """Counted; with `dies_in_change` the daemon dies while it runs."""
        self.conn.calls.append("blockJobAbort")
        if self.conn.dies_in_change:
            self.conn.dead = True
        self.conn.check()


class FakeHandle:
    def __init__(self, *, dead: bool = False) -> None:
        self.dead = dead
        self.dies_in_change = False
        self.calls: list[str] = []
        self.closed = False

    def check(self) -> None:
        if self.dead:
            raise _lost()

    def isAlive(self) -> int:
        return 0 if self.dead else 1

    def lookupByName(self, name: str) -> FakeDomain:
        self.check()
        return FakeDomain(self)

    def close(self) -> int:
        self.closed = True
        return 0

    def setKeepAlive(self, interval: int, count: int) -> int:
        self.keepalive = (interval, count)
        return 0


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The handles libvirt.open hands out; a None entry means "connection refused"."""
    queue: list[Any] = []

    def fake_open(uri: str) -> FakeHandle:
        handle = queue.pop(0)
        if handle is None:
            raise _error(libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, "Connection refused")
        return handle

    monkeypatch.setattr(libvirt, "open", fake_open)
    monkeypatch.setattr(libvirt_conn, "_RECONNECT_POLL_S", 0.01)
    return queue


def test_a_read_is_repeated_on_a_new_connection(opened: list[Any]) -> None:
    old = FakeHandle(dead=True)
    new = FakeHandle()
    opened += [None, None, new]  # refused twice while the daemon starts again
    conn = libvirt_conn.Connection("qemu:///x", old, reconnect_s=5)
    assert conn.call("vm", "jobInfo", "jobInfo") == [libvirt.VIR_DOMAIN_JOB_NONE]
    assert old.closed and not opened


def test_a_change_is_not_repeated_but_the_connection_works_again(opened: list[Any]) -> None:
    old = FakeHandle()
    new = FakeHandle()
    opened.append(new)
    old.dies_in_change = True
    conn = libvirt_conn.Connection("qemu:///x", old, reconnect_s=5)
    with pytest.raises(errors.Unreachable, match="libvirtd restarted meanwhile"):
        conn.call("vm", "pivot", "blockJobAbort", "vda", 0)
    assert old.calls == ["blockJobAbort"]  # once, not twice
    assert conn.call("vm", "jobInfo", "jobInfo")  # the new connection serves
    assert new.calls == []


def test_an_answered_error_is_not_a_restart(opened: list[Any]) -> None:
    handle = FakeHandle()

    def unresponsive_agent(name: str) -> None:
        raise _error(libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_FROM_QEMU, "agent")

    handle.lookupByName = unresponsive_agent  # type: ignore[method-assign,assignment]
    conn = libvirt_conn.Connection("qemu:///x", handle, reconnect_s=5)
    with pytest.raises(errors.Unreachable, match="agent"):
        conn.call("vm", "jobInfo", "jobInfo")
    assert not handle.closed  # no reconnect was tried


def test_a_daemon_that_stays_away_is_unreachable(opened: list[Any]) -> None:
    opened += [None] * 1000
    conn = libvirt_conn.Connection("qemu:///x", FakeHandle(dead=True), reconnect_s=0.1)
    with pytest.raises(errors.Unreachable, match=r"waited 0 s.*Connection refused"):
        conn.call("vm", "jobInfo", "jobInfo")
