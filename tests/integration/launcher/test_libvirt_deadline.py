"""A frozen libvirtd (SIGSTOP) never hangs a call: the deadline, or keepalive, ends it.

The daemon is a private libvirt node of this test; `libvirtnode.frozen`
sends SIGCONT on the way out whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from csi_vm import errors
from launcher import libvirt_conn
from tests.support import libvirtnode

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(120)]

NODE = "csi-vm-test-deadline"


@pytest.fixture(scope="module")
def uri() -> Iterator[str]:
    libvirtnode.require_system().close()
    yield libvirtnode.start(NODE)
    libvirtnode.stop(NODE)


def test_a_call_to_a_frozen_daemon_meets_its_deadline(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libvirt_conn, "CALL_S", 2.0)
    monkeypatch.setattr(libvirt_conn, "RECONNECT_S", 1.0)
    # keepalive far slower than the deadline: this is the deadline's doing
    monkeypatch.setattr(libvirt_conn, "KEEPALIVE_INTERVAL_S", 60)
    with libvirt_conn.Connection.open(uri) as conn:
        with libvirtnode.frozen(NODE), pytest.raises(errors.Unreachable) as caught:
            conn.domain_names()
        assert "did not answer within 2 s" in str(caught.value)
        assert caught.value.exit_code == 4
        conn.domain_names()  # thawed: a new connection serves


def test_keepalive_ends_a_call_without_a_deadline(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What bounds a migration: the call has no deadline, the unanswered pings end it."""
    monkeypatch.setattr(libvirt_conn, "KEEPALIVE_INTERVAL_S", 1)
    monkeypatch.setattr(libvirt_conn, "KEEPALIVE_COUNT", 2)
    with libvirt_conn.Connection.open(uri) as conn:
        handle = conn._handle
        with libvirtnode.frozen(NODE), pytest.raises(errors.Unreachable) as caught:
            conn._call("listAllDomains", handle.listAllDomains, 0, limit=None)
        assert "keepalive" in str(caught.value)
        assert not handle.isAlive()
        assert conn.domain_names() == []  # thawed: reconnected
