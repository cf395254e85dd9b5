"""Live migration of the counter guest between two libvirt nodes on this machine.

Node-local storage: one local driver per node, each with its own state dir
(`local-a`, `local-b`); shared storage: two `--shared` instances on one state
dir (`shared`, asserted multi_node_shared). node-b is a second libvirtd
(scripts/libvirt-node).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from csi_vm.csi import client as csi_client
from csi_vm.flows import context, migrate, vmrun
from csi_vm.store import records, running
from launcher import libvirt_conn
from tests.support import driverproc, libvirtnode

from .conftest import BOOT_LIMIT_S, Lab, make_env, wait_for_counter

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(240)]

NODE_B = "csi-vm-test-migrate"


@dataclasses.dataclass
class TwoNodes:
    lab: Lab
    uri_b: str

    @property
    def env(self) -> context.Env:
        return self.lab.env

    def volumes(self, driver: str) -> set[str]:
        with csi_client.Client(self.env.driver(driver).endpoint) as c:
            return {e.volume.volume_id for e in c.list_volumes()}

    def domains(self) -> tuple[list[str], list[str]]:
        with (
            libvirt_conn.Connection.open(libvirt_conn.SYSTEM_URI) as a,
            libvirt_conn.Connection.open(self.uri_b) as b,
        ):
            return _active(a), _active(b)


def _active(conn: libvirt_conn.Connection) -> list[str]:
    return [n for n in conn.domain_names() if conn.status(n).active]


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, boot: vmrun.Boot) -> Iterator[TwoNodes]:
    uri_b = libvirtnode.start(NODE_B)
    tmp = tmp_path_factory.mktemp("two-nodes")
    shared_state = tmp / "shared-state"
    drivers = {
        "local-a": driverproc.start_driver(tmp / "a", node_id="node-a"),
        "local-b": driverproc.start_driver(tmp / "b", node_id="node-b"),
        "shared-a": driverproc.start_driver(
            tmp / "sa", node_id="node-a", shared=True, state_dir=shared_state
        ),
        "shared-b": driverproc.start_driver(
            tmp / "sb", node_id="node-b", shared=True, state_dir=shared_state
        ),
    }
    ep = {name: d.endpoint for name, d in drivers.items()}
    cfg = {
        "node": "node-a",
        "nodes": {"node-a": {}, "node-b": {"libvirt": uri_b, "driver": "local-b"}},
        "drivers": {
            "local-a": {"endpoint": ep["local-a"], "nodes": {"node-a": ep["local-a"]}},
            "local-b": {"endpoint": ep["local-b"], "nodes": {"node-b": ep["local-b"]}},
            "shared": {
                "endpoint": ep["shared-a"],
                "nodes": {"node-a": ep["shared-a"], "node-b": ep["shared-b"]},
                "assert": ["multi_node_shared"],
            },
        },
    }
    env = make_env(tmp, cfg)
    lab = Lab(tmp=tmp, env=env, boot=boot, drivers=drivers)
    yield TwoNodes(lab=lab, uri_b=uri_b)
    for run in running.list_all(env.store):
        vmrun.stop(env, vm_name=run.vm, grace_s=0)
    env.close()
    for drv in drivers.values():
        drv.stop()
    libvirtnode.stop(NODE_B)


@pytest.mark.parametrize(
    ("driver", "strategy"),
    [("local-a", migrate.STORAGE), ("shared", migrate.SHARED)],
    ids=["node-local", "shared"],
)
def test_counter_continues_on_the_target(two: TwoNodes, driver: str, strategy: str) -> None:
    name = f"mig-{driver}"
    two.lab.create_vm(name, driver=driver)
    disk = two.lab.start(name)
    before = wait_for_counter(disk, above=5, within=BOOT_LIMIT_S)
    old_volume = records.get_vm(two.env.store, name).disk("root").volume_id

    result = migrate.migrate(two.env, vm_name=name, to="node-b")

    print(f"{strategy}: {result}")
    assert result.strategy == strategy
    assert 0 <= result.downtime_ms < 5000
    assert (result.bytes_copied > 0) == (strategy == migrate.STORAGE)
    assert running.get(two.env.store, name).node == "node-b"
    on_a, on_b = two.domains()
    assert name in on_b and name not in on_a
    new_disk = two.lab.device(name, node="node-b")
    # No acknowledged write lost: the guest goes on from at least `before`.
    after = wait_for_counter(new_disk, above=before, within=10)
    wait_for_counter(new_disk, above=after + 2, within=10)
    console = vmrun.console(two.env, vm_name=name).read_text()
    assert f"CSIVMCTR {after}" in console
    volume = records.get_vm(two.env.store, name).disk("root")
    if strategy == migrate.STORAGE:
        assert volume.driver == "local-b"
        assert old_volume not in two.volumes("local-a")  # retired after success
        assert two.volumes("local-b") >= {volume.volume_id}
    else:
        assert volume.volume_id == old_volume
    vmrun.stop(two.env, vm_name=name, grace_s=0)
    assert two.domains() == ([], [])
