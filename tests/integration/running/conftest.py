"""A lab for running VMs: the local driver, the system libvirtd, a store, the counter guest.

One driver and one guest boot per test at most; the driver and the guest build
are shared by a module.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from csi_vm import config, spec
from csi_vm.flows import context, engine, vmrun, vms
from csi_vm.store import db, running
from launcher import blockjobs, counter, libvirt_conn
from tests.support import crash, driverproc, libvirtnode

MIB = 1 << 20
#: "a few seconds" under TCG (LAB.md); this only guards against a hung boot
BOOT_LIMIT_S = 60.0


@dataclasses.dataclass
class Lab:
    tmp: pathlib.Path
    env: context.Env
    boot: vmrun.Boot
    drivers: dict[str, driverproc.DriverProcess]

    def create_vm(self, name: str, *, size: int = 64 * MIB, driver: str = "local") -> None:
        vm_spec = spec.VMSpec.model_validate(
            {
                "name": name,
                "memory_mib": 128,
                "disks": [{"name": "root", "size": size, "driver": driver, "mode": "block"}],
            }
        )
        vms.create(self.env, vm_spec)

    def start(self, name: str, *, node: str = "") -> pathlib.Path:
        """Start the counter guest; returns its disk's device, once the counter runs."""
        vmrun.start(self.env, vm_name=name, node=node, boot=self.boot)
        disk = self.device(name, node=node or self.env.node)
        wait_for_counter(disk, above=0, within=BOOT_LIMIT_S)
        return disk

    def device(self, name: str, *, node: str, target: str = "vda") -> pathlib.Path:
        """The device the guest's disk is on now (after a pivot or migration: the new one)."""
        uri = self.env.cfg.node_config(node).libvirt
        with libvirt_conn.Connection.open(uri) as conn:
            return pathlib.Path(blockjobs.disk_source(conn, name, target=target))


def make_env(tmp: pathlib.Path, cfg: dict[str, Any]) -> context.Env:
    cfg_file = tmp / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    return context.Env(
        cfg=config.load(cfg_file), store=db.Store(tmp / "csi-vm.db"), state_dir=tmp / "state"
    )


@pytest.fixture(scope="module")
def boot() -> vmrun.Boot:
    libvirtnode.require_system().close()
    return vmrun.counter_guest()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, boot: vmrun.Boot) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("running")
    drivers = {
        "local": driverproc.start_driver(tmp / "driver"),
        # a driver like many in production: no snapshots, no expansion
        "bare": driverproc.start_driver(
            tmp / "bare", without=("snapshot", "expansion", "clone"), node_id="node-a"
        ),
    }
    endpoints = {name: {"endpoint": d.endpoint} for name, d in drivers.items()}
    env = make_env(tmp, {"node": "node-a", "drivers": endpoints})
    yield Lab(tmp=tmp, env=env, boot=boot, drivers=drivers)
    env.close()
    for drv in drivers.values():
        drv.stop()


def wait_for_counter(disk: pathlib.Path, *, above: int, within: float) -> int:
    """Poll the disk until the guest wrote a value above `above`; return it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = counter.read_counter(disk)
        if value > above:
            return value
        time.sleep(0.05)
    raise AssertionError(f"counter on {disk} stayed at <= {above} for {within} s")


@pytest.fixture(autouse=True)
def _stop_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed test must not leave its VM running into the next one."""
    yield
    if "lab" in request.fixturenames:
        stop_all(request.getfixturevalue("lab").env)


def stop_all(env: context.Env) -> None:
    engine.resume(env)  # a test that failed mid-flow leaves it to roll back first
    for run in running.list_all(env.store):
        vmrun.stop(env, vm_name=run.vm, grace_s=0)


def run_cli(lab: Lab, extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real csi-vm command on the lab's config, store and state (killed where `extra`
    names a crash point)."""
    env = {
        **os.environ,
        **extra,
        "CSI_VM_CONFIG": str(lab.tmp / "config.yaml"),
        "CSI_VM_DB": str(lab.tmp / "csi-vm.db"),
        "CSI_VM_STATE_DIR": str(lab.tmp / "state"),
    }
    return subprocess.run(
        crash.command(*args) if crash.ENV in extra else [sys.executable, "-m", "csi_vm", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
