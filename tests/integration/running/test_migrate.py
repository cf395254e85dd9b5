"""Live migration of the counter guest between two libvirt nodes on this machine.

Node-local storage: one local driver per node, each with its own state dir
(`local-a`, `local-b`); shared storage: two `--shared` instances on one state
dir (`shared`, asserted multi_node_shared). node-b is a second libvirtd
(scripts/libvirt-node).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from csi_vm import errors
from csi_vm.csi import client as csi_client
from csi_vm.flows import context, migrate, vmrun
from csi_vm.store import records, running
from launcher import counter, libvirt_conn
from tests.support import crash, driverproc, libvirtnode

from .conftest import BOOT_LIMIT_S, Lab, make_env, stop_all, wait_for_counter

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
    try:
        yield TwoNodes(lab=lab, uri_b=uri_b)
    finally:
        try:
            stop_all(env)
        finally:
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
    planned = _cli(two, "migrate", name, "--to", "node-b", "--dry-run", "-o", "json")
    out, err = planned.communicate(timeout=60)
    assert planned.returncode == 0, err
    assert {d["strategy"] for d in json.loads(out)["disks"]} == {strategy}
    assert running.get(two.env.store, name).node == "node-a", "the dry run moved it"

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


def _cli(
    two: TwoNodes, *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        **(extra_env or {}),
        "CSI_VM_CONFIG": str(two.lab.tmp / "config.yaml"),
        "CSI_VM_DB": str(two.lab.tmp / "csi-vm.db"),
        "CSI_VM_STATE_DIR": str(two.lab.tmp / "state"),
    }
    crashable = crash.ENV in (extra_env or {})
    argv = crash.command(*args) if crashable else [sys.executable, "-m", "csi_vm", *args]
    return subprocess.Popen(
        argv,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_job(name: str, *, within: float = 30.0) -> None:
    """Until the source node runs a migration job for the domain (the copy has begun)."""
    deadline = time.monotonic() + within
    with libvirt_conn.Connection.open(libvirt_conn.SYSTEM_URI) as conn:
        while time.monotonic() < deadline:
            if conn.call(name, "jobInfo", "jobInfo")[0] != 0:  # 0: VIR_DOMAIN_JOB_NONE
                time.sleep(0.5)  # well into the disk copy
                return
            time.sleep(0.05)
    raise AssertionError(f"no migration job on {name} within {within} s")


def _assert_home(two: TwoNodes, name: str, disk: pathlib.Path, volumes: object) -> None:
    """The VM runs on node-a only, on its original disk; no volume was left behind."""
    assert running.get(two.env.store, name).node == "node-a"
    on_a, on_b = two.domains()
    assert name in on_a and name not in on_b
    with libvirt_conn.Connection.open(two.uri_b) as b:
        assert not b.exists(name)
    assert (two.volumes("local-a"), two.volumes("local-b")) == volumes
    assert two.lab.device(name, node="node-a") == disk
    now = counter.read_counter(disk)
    wait_for_counter(disk, above=now + 2, within=10)


def test_cancelled_or_killed_migration_leaves_the_vm_on_its_source(two: TwoNodes) -> None:
    name = "mig-fail"
    two.lab.create_vm(name, driver="local-a")
    disk = two.lab.start(name)
    volumes = (two.volumes("local-a"), two.volumes("local-b"))

    # Cancelled: the job is aborted from outside while the disk is copied.
    failed: list[BaseException] = []

    def run() -> None:
        try:
            migrate.migrate(two.env, vm_name=name, to="node-b", bandwidth_mib_s=4)
        except errors.CsiVmError as err:
            failed.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    _wait_for_job(name)
    with libvirt_conn.Connection.open(libvirt_conn.SYSTEM_URI) as conn:
        conn.call(name, "abortJob", "abortJob")
    worker.join(60)
    assert failed, "the aborted migration reported success"
    _assert_home(two, name, disk, volumes)

    # Killed: kill -9 of csi-vm mid-copy. A read-only command only warns of
    # the unfinished migration; the next command that changes things (here
    # resume) puts things right.
    proc = _cli(two, "migrate", name, "--to", "node-b", "--bandwidth", "4")
    _wait_for_job(name)
    proc.kill()
    proc.communicate(timeout=30)
    status = _cli(two, "vm", "status", name)
    _out, err = status.communicate(timeout=60)
    assert status.returncode == 0, err
    assert "warning:" in err and "migrate" in err, err
    assert "rolled back" not in err, err
    resume = _cli(two, "resume")
    out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    assert "rolled back migrate" in out + err, out + err
    _assert_home(two, name, disk, volumes)

    # And it still migrates afterwards.
    result = migrate.migrate(two.env, vm_name=name, to="node-b")
    assert result.strategy == migrate.STORAGE
    vmrun.stop(two.env, vm_name=name, grace_s=0)


def test_cold_migration_only_with_allowed_downtime(two: TwoNodes) -> None:
    name = "mig-cold"
    two.lab.create_vm(name, driver="local-a")
    disk = two.lab.start(name)
    before = wait_for_counter(disk, above=3, within=BOOT_LIMIT_S)
    with pytest.raises(errors.Rejected, match="allow-downtime"):
        migrate.migrate(two.env, vm_name=name, to="node-b", cold=True)
    old_volume = records.get_vm(two.env.store, name).disk("root").volume_id

    result = migrate.migrate(two.env, vm_name=name, to="node-b", cold=True, allow_downtime=True)

    assert (result.strategy, result.target) == ("cold", "node-b")
    assert result.bytes_copied > 0 and result.downtime_ms > 0
    assert running.get(two.env.store, name).node == "node-b"
    assert two.domains() == ([], [name])
    # The guest booted again on node-b and goes on from the value on its disk.
    wait_for_counter(two.lab.device(name, node="node-b"), above=before, within=BOOT_LIMIT_S)
    assert old_volume not in two.volumes("local-a")
    vmrun.stop(two.env, vm_name=name, grace_s=0)


def _consistent(two: TwoNodes, name: str, *, others: set[str]) -> str:
    """The VM runs on exactly the node the store says, on the volume it records; no orphans
    (the only other volumes are `others`, those of other tests' VMs)."""
    node = running.get(two.env.store, name).node
    on_a, on_b = two.domains()
    assert (name in on_a, name in on_b) == (node == "node-a", node == "node-b")
    disk = records.get_vm(two.env.store, name).disk("root")
    assert two.volumes("local-a") | two.volumes("local-b") == {disk.volume_id} | others
    device = two.lab.device(name, node=node)
    wait_for_counter(device, above=counter.read_counter(device) + 1, within=10)
    return node


@pytest.mark.timeout(300)
def test_kill_at_every_step_of_a_storage_migration_then_resume(two: TwoNodes) -> None:
    name = "mig-crash"
    others = two.volumes("local-a") | two.volumes("local-b")
    two.lab.create_vm(name, driver="local-a")
    two.lab.start(name)
    # Steps: create_volume, publish_spare, migrate, then the commit and its tidy-up.
    for spec in ("1", "2", "3", "1:after", "2:after", "3:after", "4"):
        here = running.get(two.env.store, name).node
        there = "node-b" if here == "node-a" else "node-a"
        crashed = _cli(two, "migrate", name, "--to", there, extra_env={crash.ENV: spec})
        crashed.communicate(timeout=120)
        assert crashed.returncode == -9, f"no crash at step {spec}"
        resumed = _cli(two, "resume")
        _out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        node = _consistent(two, name, others=others)
        print(f"killed at {spec}: the VM runs on {node}")
        assert node == (there if spec == "4" else here)
    vmrun.stop(two.env, vm_name=name, grace_s=0)
