"""Benchmark an online snapshot with the guest agent's freeze against one without it.

The agent guest (qemu-guest-agent, the counter written into a file on ext4)
runs on the local CSI driver, once per snapshot path: CSI snapshots (driver
"local") and the libvirt push backup (driver "bare", without CSI snapshots).
On each VM, --runs online snapshots are taken while the agent freezes the
filesystem; then the agent is stopped (SIGTERM: it closes its port, so libvirt
shows it disconnected) and --runs more are taken, which csi-vm takes
crash-consistent without asking it. Printed, per path: median time of each
kind and the ratio frozen / no-freeze, the baseline of the same VM, disk and
process. Each snapshot is deleted before the next. No assertion is made on
time. Needs root, libvirtd (scripts/libvirtd-start).

Usage: .venv/bin/python bench/snapshot.py [--runs 5] [--dir DIR]
"""

from __future__ import annotations

import os
import sys

# bench/ holds a copy.py that would shadow the standard library's copy module:
# take this folder off the import path, and put the repo on it.
sys.path.pop(0)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import pathlib
import statistics
import tempfile
import time

import yaml

from csi_vm import config, spec
from csi_vm.flows import context, offline_disk, online, snapshots, vmrun, vms
from csi_vm.store import db, running
from launcher import blockjobs, fscounter, libvirt_conn
from tests.support import driverproc, guestagent, libvirtnode

MiB = 1 << 20
#: the agent guest boots in a few seconds under TCG; this only bounds a hang
BOOT_LIMIT_S = 120.0


def _env(tmp: pathlib.Path, drivers: dict[str, str]) -> context.Env:
    cfg = {"node": "node-a", "drivers": {n: {"endpoint": e} for n, e in drivers.items()}}
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    return context.Env(
        cfg=config.load(tmp / "config.yaml"), store=db.Store(tmp / "db"), state_dir=tmp / "state"
    )


def _start(env: context.Env, tmp: pathlib.Path, *, name: str, driver: str) -> None:
    vm_spec = spec.VMSpec.model_validate(
        {"name": name, "memory_mib": 128,
         "disks": [{"name": "root", "size": 256 * MiB, "driver": driver, "mode": "block"}]}
    )  # fmt: skip
    vms.create(env, vm_spec)
    image = tmp / f"{name}.raw"
    fscounter.make_image(image, size=256 * MiB)
    offline_disk.import_image(env, vm=name, disk="root", image=image)
    image.unlink()
    vmrun.start(env, vm_name=name, boot=vmrun.counter_guest(agent=True))
    guestagent.wait_for_agent(name, within=BOOT_LIMIT_S)


def _timed(env: context.Env, name: str, runs: int, *, want: str) -> list[float]:
    took = []
    for i in range(runs):
        began = time.monotonic()
        result = online.snapshot(env, vm_name=name, name=f"{name}-{want[:6]}-{i}")
        took.append(time.monotonic() - began)
        if result.consistency != want:
            raise SystemExit(f"{name}: expected {want}, got {result.consistency}: {result.why}")
        snapshots.delete(env, name=result.snapshot.name)
    return took


def _disconnect_agent(env: context.Env, name: str) -> None:
    guestagent.signal_agent(name, "TERM")
    deadline = time.monotonic() + BOOT_LIMIT_S
    with libvirt_conn.Connection.open(running.get(env.store, name).uri) as conn:
        while blockjobs.agent_connected(conn, name):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the guest agent stays connected after SIGTERM")
            time.sleep(0.1)


def _bench(env: context.Env, tmp: pathlib.Path, *, driver: str, runs: int) -> None:
    name = f"bench-{driver}"
    _start(env, tmp, name=name, driver=driver)
    frozen = _timed(env, name, runs, want=online.FS_FROZEN)
    _disconnect_agent(env, name)
    plain = _timed(env, name, runs, want=online.CRASH_CONSISTENT)
    vmrun.stop(env, vm_name=name, grace_s=0)
    vms.delete(env, name=name)
    with_freeze, without = statistics.median(frozen), statistics.median(plain)
    path = "CSI snapshot" if driver == "local" else "push backup"
    print(f"online snapshot, {path} (driver {driver}), 256 MiB ext4 disk, {runs} runs each")
    print(f"  with freeze median {with_freeze:.3f} s; baseline (no freeze) median {without:.3f} s")
    print(f"  ratio with / without freeze: {with_freeze / without:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="snapshots of each kind")
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("/var/tmp"))
    args = parser.parse_args()
    libvirtnode.require_system().close()
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-snapshot-", dir=args.dir) as name:
        tmp = pathlib.Path(name)
        quiet = ("--log-level", "WARNING")
        local = driverproc.start_driver(tmp / "local", extra_args=quiet)
        bare = driverproc.start_driver(
            tmp / "bare", without=("snapshot", "expansion", "clone"), extra_args=quiet
        )
        env = _env(tmp, {"local": local.endpoint, "bare": bare.endpoint})
        try:
            for driver in ("local", "bare"):
                _bench(env, tmp, driver=driver, runs=args.runs)
        finally:
            for run in running.list_all(env.store):
                vmrun.stop(env, vm_name=run.vm, grace_s=0)
            env.close()
            local.stop()
            bare.stop()


if __name__ == "__main__":
    main()
