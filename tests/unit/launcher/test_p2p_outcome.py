"""Where a peer-to-peer migration left the guest, read from the source's libvirt alone.

libvirt's test driver stands in for the source launcher's libvirtd: a guest
shut off, one gone. It has no job statistics, so a running guest, and a domain
shut off with reason "migrated", are tests/integration/cluster/test_migration.py's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from launcher import libvirt_conn, migration

_XML = """<domain type='test'><name>{name}</name><memory>65536</memory>
<os><type>hvm</type></os></domain>"""


@pytest.fixture
def conn() -> Iterator[libvirt_conn.Connection]:
    with libvirt_conn.Connection.open("test:///default") as opened:
        yield opened


@pytest.fixture
def name(conn: libvirt_conn.Connection) -> Iterator[str]:
    found = f"p2p-{uuid.uuid4().hex[:8]}"
    conn.define(_XML.format(name=found))
    yield found
    if conn.exists(found):
        conn.destroy(found)
        conn.undefine(found)


def test_a_shut_off_guest_is_asked_no_job_and_ran_nowhere_here(
    conn: libvirt_conn.Connection, name: str
) -> None:
    # libvirt refuses to report a job of a domain that does not run: not asked.
    conn.start(name)
    conn.destroy(name)
    assert migration.p2p_outcome(conn, name) is migration.Where.NOWHERE


def test_a_guest_gone_from_the_source_went_to_the_target(
    conn: libvirt_conn.Connection, name: str
) -> None:
    conn.undefine(name)
    assert migration.p2p_outcome(conn, name) is migration.Where.TARGET
