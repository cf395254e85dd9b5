"""Benchmark storage migration of a running VM against a plain copy of its disk.

Two libvirt nodes on this machine (the system libvirtd and one started with
scripts/libvirt-node), one local CSI driver per node with its own state dir
(node-local storage), and the counter guest on a 1 GiB block disk filled with
random data. The VM is live-migrated with storage copy back and forth
(--runs times each way); printed, for the same machine and run:
  - the guest's downtime per migration as qemu measured it, median and max
    (target: median <= 300 ms, QEMU's default downtime limit, under TCG);
  - the total time of a migration (new volume, publish, copy, switch, retire),
    median, as a ratio against the baseline: the copy engine
    (`csi_vm.copy.engine.copy`, as `csi-vm image copy` runs it) copying the
    same disk, device to a fresh file, in this process, median of --runs;
  - bytes the storage copy moved per migration.
No assertion is made on time. Needs root, libvirtd (scripts/libvirtd-start).

Usage: .venv/bin/python bench/migrate.py [--runs 3] [--dir DIR]
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
from csi_vm.copy import engine, model
from csi_vm.flows import context, migrate, vmrun, vms
from csi_vm.store import db, running
from launcher import blockjobs, libvirt_conn
from tests.support import driverproc, libvirtnode

GiB = 1 << 30
NODE_B = "csi-vm-bench-b"
BASELINE = "copy engine (csi-vm image copy), device to file"


def _env(tmp: pathlib.Path, uri_b: str, drivers: dict[str, str]) -> context.Env:
    cfg = {
        "node": "node-a",
        # node-local storage: a disk moved to a node goes to that node's driver
        "nodes": {
            "node-a": {"driver": "local-a"},
            "node-b": {"libvirt": uri_b, "driver": "local-b"},
        },
        "drivers": {
            "local-a": {"endpoint": drivers["a"], "nodes": {"node-a": drivers["a"]}},
            "local-b": {"endpoint": drivers["b"], "nodes": {"node-b": drivers["b"]}},
        },
    }
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg))
    return context.Env(
        cfg=config.load(tmp / "config.yaml"), store=db.Store(tmp / "db"), state_dir=tmp / "state"
    )


def _random_image(path: pathlib.Path, size: int) -> None:
    """Random data all through: a worst case for a copy that skips holes and zeros."""
    chunk = 16 << 20
    with path.open("wb") as out:
        for _ in range(size // chunk):
            out.write(os.urandom(chunk))


def _device(env: context.Env, vm: str) -> pathlib.Path:
    run = running.get(env.store, vm)
    with libvirt_conn.Connection.open(run.uri) as conn:
        return pathlib.Path(blockjobs.disk_source(conn, vm, target="vda"))


def _baseline(device: pathlib.Path, scratch: pathlib.Path) -> float:
    target = scratch / "baseline.raw"
    began = time.monotonic()
    engine.copy(device, target, options=model.Options(overwrite=True))
    elapsed = time.monotonic() - began
    target.unlink()
    return elapsed


def _bench(env: context.Env, tmp: pathlib.Path, runs: int) -> None:
    image = tmp / "disk.raw"
    _random_image(image, GiB)
    vm_spec = spec.VMSpec.model_validate(
        {
            "name": "bench",
            "memory_mib": 128,
            "disks": [
                {"name": "root", "size": GiB, "driver": "local-a", "mode": "block",
                 "source": {"image": str(image)}},
            ],
        }
    )  # fmt: skip
    vms.create(env, vm_spec)
    image.unlink()
    vmrun.start(env, vm_name="bench", boot=vmrun.counter_guest())
    time.sleep(3)  # let the guest boot and start writing
    results: list[migrate.Result] = []
    baseline: list[float] = []
    for _ in range(runs):
        for to in ("node-b", "node-a"):
            baseline.append(_baseline(_device(env, "bench"), tmp))
            results.append(migrate.migrate(env, vm_name="bench", to=to))
            print(
                f"  {results[-1].source} -> {to}: downtime {results[-1].downtime_ms} ms, "
                f"{results[-1].duration_ms / 1000:.2f} s, baseline {baseline[-1]:.2f} s"
            )
    vmrun.stop(env, vm_name="bench", grace_s=0)
    vms.delete(env, name="bench")
    _report(results, baseline)


def _report(results: list[migrate.Result], baseline: list[float]) -> None:
    downtimes = [r.downtime_ms for r in results]
    total = statistics.median(r.duration_ms / 1000 for r in results)
    base = statistics.median(baseline)
    print(f"storage migration of a running VM, 1 GiB disk, {len(results)} migrations")
    print(f"  downtime median {statistics.median(downtimes):.0f} ms, max {max(downtimes)} ms"
          " (target: median <= 300 ms)")  # fmt: skip
    print(f"  bytes copied per migration: {statistics.median(r.bytes_copied for r in results):.0f}")
    print(f"  total time median {total:.2f} s; baseline ({BASELINE}) median {base:.2f} s")
    print(f"  ratio total / baseline: {total / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="migrations each way")
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("/var/tmp"))
    args = parser.parse_args()
    libvirtnode.require_system().close()
    uri_b = libvirtnode.start(NODE_B)
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-migrate-", dir=args.dir) as name:
        tmp = pathlib.Path(name)
        quiet = ("--log-level", "WARNING")
        a = driverproc.start_driver(tmp / "a", node_id="node-a", extra_args=quiet)
        b = driverproc.start_driver(tmp / "b", node_id="node-b", extra_args=quiet)
        env = _env(tmp, uri_b, {"a": a.endpoint, "b": b.endpoint})
        try:
            _bench(env, tmp, args.runs)
        finally:
            for run in running.list_all(env.store):
                vmrun.stop(env, vm_name=run.vm, grace_s=0)
            env.close()
            a.stop()
            b.stop()
            libvirtnode.stop(NODE_B)


if __name__ == "__main__":
    main()
