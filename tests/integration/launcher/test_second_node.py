"""A second libvirt node on this machine (scripts/libvirt-node), as migration tests need."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from csi_vm import errors
from launcher import libvirt_conn, node
from tests.support import libvirtnode

from .conftest import BOOT_LIMIT_S, Lab, published_device, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(180)]

NODE = "csi-vm-test-b"


@pytest.fixture(scope="module")
def node_b() -> Iterator[libvirt_conn.Connection]:
    libvirtnode.require_system().close()
    uri = libvirtnode.start(NODE)
    conn = libvirt_conn.Connection.open(uri)
    yield conn
    conn.close()
    libvirtnode.stop(NODE)
    with pytest.raises(errors.Unreachable):
        libvirt_conn.Connection.open(uri)


def test_second_node_answers_as_a_separate_host(lab: Lab, node_b: libvirt_conn.Connection) -> None:
    assert node_b.uri != lab.conn.uri
    assert node_b.hypervisor_version() > 0
    assert node_b.host_uuid() != lab.conn.host_uuid()
    assert libvirtnode.start(NODE) == node_b.uri  # idempotent


def test_domains_of_one_node_are_invisible_on_the_other(
    lab: Lab, node_b: libvirt_conn.Connection
) -> None:
    vm = lab.counter_vm("csi-vm-test-only-on-b", "unused")
    xml = f"""<domain type='qemu'><name>{vm.name}</name><uuid>{vm.uuid}</uuid>
      <memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>"""
    node_b.define(xml)
    try:
        assert node_b.exists(vm.name)
        assert not lab.conn.exists(vm.name)
    finally:
        node_b.undefine(vm.name)


def test_counter_guest_runs_on_the_second_node(
    lab: Lab, node_b: libvirt_conn.Connection, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # The node's own libvirtd, the same CSI driver (its devices are in the shared /dev).
    on_b = node.Node(csi=lab.csi, conn=node_b, state_dir=tmp_path_factory.mktemp("node-b"))
    volume_id = lab.block_volume("disk-on-b")
    vm = lab.counter_vm("csi-vm-test-on-b", volume_id)
    on_b.start(vm)
    try:
        assert node_b.status(vm.name).active and not lab.conn.exists(vm.name)
        device = published_device(on_b, vm.name)
        first = wait_for_counter(device, above=0, within=BOOT_LIMIT_S)
        wait_for_counter(device, above=first, within=10)
    finally:
        on_b.stop(vm.name, grace_s=0)
    assert not node_b.exists(vm.name)
