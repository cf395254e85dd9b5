"""Every libvirt call has a deadline: fake handles that never answer (no libvirtd needed).

A call past its deadline fails as Unreachable, the connection is dropped and
the next call opens a new one; the late call's connection is closed once it
ends. Opening a connection is bounded too, and keepalive is asked for on
every connection. The real daemon, frozen with SIGSTOP, is in
tests/integration/launcher/test_libvirt_deadline.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import libvirt
import pytest

from csi_vm import errors
from launcher import libvirt_conn, libvirt_deadline

pytestmark = pytest.mark.timeout(20)

LIMIT_S = 0.2


class FakeHandle:
    """A libvirt connection whose domain calls wait until `answer` is set."""

    def __init__(self) -> None:
        self.answer = threading.Event()
        self.closed = threading.Event()
        self.calls = 0
        self.keepalive: tuple[int, int] | None = None

    def lookupByName(self, name: str) -> FakeDomain:
        return FakeDomain(self)

    def isAlive(self) -> int:
        return 1

    def setKeepAlive(self, interval: int, count: int) -> int:
        self.keepalive = (interval, count)
        return 0

    def close(self) -> int:
        self.closed.set()
        return 0


class FakeDomain:
    def __init__(self, conn: FakeHandle) -> None:
        self.conn = conn

    def jobInfo(self) -> list[int]:
        self.conn.calls += 1
        self.conn.answer.wait()
        return [libvirt.VIR_DOMAIN_JOB_NONE]

    def abortJob(self) -> int:
        self.conn.answer.wait()
        return 0


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[FakeHandle | None]:
    """The handles libvirt.open hands out, in order; None: the connection is refused."""
    queue: list[FakeHandle | None] = []

    def fake_open(uri: str) -> FakeHandle:
        handle = queue.pop(0)
        if handle is None:
            err = libvirt.libvirtError("Connection refused")
            err.err = (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, "refused", 2) + (
                None,
            ) * 5
            raise err
        return handle

    monkeypatch.setattr(libvirt, "open", fake_open)
    monkeypatch.setattr(libvirt_conn, "CALL_S", LIMIT_S)
    return queue


def test_bounded_gives_the_value_or_the_error() -> None:
    assert libvirt_deadline.bounded(lambda x: x + 1, (1,), limit=5) == 2
    with pytest.raises(ZeroDivisionError):
        libvirt_deadline.bounded(lambda x: 1 // x, (0,), limit=5)


def test_bounded_gives_up_and_hands_a_late_value_over() -> None:
    release = threading.Event()
    handed: list[Any] = []
    got = threading.Event()

    def late(value: Any) -> None:
        handed.append(value)
        got.set()

    def slow() -> str:
        release.wait()
        return "late handle"

    with pytest.raises(libvirt_deadline.Overdue):
        libvirt_deadline.bounded(slow, (), limit=LIMIT_S, late=late)
    release.set()
    assert got.wait(5)
    assert handed == ["late handle"]


def test_keepalive_is_asked_for(opened: list[FakeHandle]) -> None:
    opened.append(FakeHandle())
    conn = libvirt_conn.Connection.open("qemu:///x")
    assert conn._handle.keepalive == (
        libvirt_conn.KEEPALIVE_INTERVAL_S,
        libvirt_conn.KEEPALIVE_COUNT,
    )


@pytest.mark.parametrize(
    ("what", "method"),
    [("jobInfo", "jobInfo"), ("abortJob", "abortJob")],
    ids=["read-repeated", "change-not-repeated"],
)
def test_a_call_past_its_deadline_drops_the_connection(
    opened: list[FakeHandle], what: str, method: str
) -> None:
    stuck, fresh = FakeHandle(), FakeHandle()
    opened += [stuck, fresh]
    conn = libvirt_conn.Connection.open("qemu:///x")
    fresh.answer.set()
    if method == "jobInfo":
        # a read is repeated on the new connection, which answers
        assert conn.call("vm", what, method) == [libvirt.VIR_DOMAIN_JOB_NONE]
    else:
        with pytest.raises(errors.Unreachable, match="did not answer within") as caught:
            conn.call("vm", what, method)
        assert caught.value.exit_code == 4
    assert conn._handle is fresh
    assert not stuck.closed.is_set()  # its call still runs
    stuck.answer.set()
    assert stuck.closed.wait(5)  # closed once the late call ended


def test_a_dropped_connection_is_never_used_again(opened: list[FakeHandle | None]) -> None:
    """Not even after the reconnect failed: its late call may close it at any moment."""
    stuck, fresh = FakeHandle(), FakeHandle()
    conn = libvirt_conn.Connection("qemu:///x", stuck, reconnect_s=0)
    opened.append(None)  # the daemon does not take the new connection yet
    with pytest.raises(errors.Unreachable, match="cannot connect"):
        conn.call("vm", "jobInfo", "jobInfo")
    opened.append(fresh)
    fresh.answer.set()
    assert conn.call("vm", "jobInfo", "jobInfo") == [libvirt.VIR_DOMAIN_JOB_NONE]
    assert (stuck.calls, fresh.calls) == (1, 1)
    stuck.answer.set()
    assert stuck.closed.wait(5)


def test_an_open_that_hangs_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    late = FakeHandle()

    def hanging_open(uri: str) -> FakeHandle:
        release.wait()
        return late

    monkeypatch.setattr(libvirt, "open", hanging_open)
    monkeypatch.setattr(libvirt_conn, "CALL_S", LIMIT_S)
    with pytest.raises(errors.Unreachable, match="did not answer within"):
        libvirt_conn.Connection.open("qemu:///x")
    release.set()
    assert late.closed.wait(5)  # nobody else would close it


def test_the_event_loop_thread_never_holds_up_exit() -> None:
    """A real process with a real (in-process) libvirt connection exits when done."""
    code = (
        "from launcher import libvirt_conn\n"
        "with libvirt_conn.Connection.open('test:///default') as c:\n"
        "    print(c.domain_names())\n"
        "import threading\n"
        "print(sorted(t.name for t in threading.enumerate() if t.daemon))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=15, check=True
    )
    assert "['test']" in done.stdout
    assert "libvirt-events" in done.stdout  # the loop ran, as a daemon thread
