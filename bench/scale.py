"""Snapshot many VMs at once on the local driver, against the same CSI calls made directly.

Creates N VMs of 2 blank block disks each (not timed), then:
  - baseline "direct CSI": one CreateVolumeGroupSnapshot per VM (what a VM
    snapshot of 2 disks on one driver costs the driver), concurrency C;
  - csi-vm: `snapshots.create` per VM through the journaled flow, concurrency C;
prints VM snapshots per second for both, csi-vm's overhead ratio, and the
peak RSS of this process (target: >= 50 VM snapshots/s, RSS < 300 MB).

Needs root. Usage: .venv/bin/python bench/scale.py [--vms 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import pathlib
import resource
import sys
import tempfile
import time

import yaml

# Run as a script, Python puts bench/ first on the path, where copy.py would
# shadow the standard library's copy module: put the repository there instead.
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

from csi_vm import config, spec
from csi_vm.csi import client as csi_client
from csi_vm.flows import context, snapshots, vms
from csi_vm.store import db, records
from tests.support import driverproc

MIB = 1024 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-scale-") as tmp:
        base = pathlib.Path(tmp)
        drv = driverproc.start_driver(base / "driver", extra_args=("--log-level", "WARNING"))
        try:
            env = _env(base, drv.endpoint)
            _run(env, drv.endpoint, vms_count=args.vms, workers=args.concurrency)
            env.close()
        finally:
            drv.stop()


def _env(base: pathlib.Path, endpoint: str) -> context.Env:
    cfg_file = base / "config.yaml"
    cfg_file.write_text(yaml.safe_dump({"drivers": {"local": {"endpoint": endpoint}}}))
    return context.Env(
        cfg=config.load(cfg_file), store=db.Store(base / "csi-vm.db"), state_dir=base / "state"
    )


def _parallel(func: object, items: list[str], workers: int) -> float:
    assert callable(func)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(func, item) for item in items]:
            future.result()
    return time.perf_counter() - started


def _run(env: context.Env, endpoint: str, *, vms_count: int, workers: int) -> None:
    names = [f"vm-{i:05d}" for i in range(vms_count)]
    disks = [{"name": d, "size": MIB, "driver": "local", "mode": "block"} for d in ("root", "data")]
    print(f"creating {vms_count} VMs of 2 disks ...", flush=True)
    _parallel(
        lambda n: vms.create(env, spec.VMSpec.model_validate({"name": n, "disks": disks})),
        names,
        workers,
    )
    volumes = {vm.name: [d.volume_id for d in vm.disks] for vm in vms_list(env)}

    made: list[tuple[str, tuple[str, ...]]] = []
    with csi_client.Client(endpoint) as direct:

        def raw(name: str) -> None:
            group = direct.create_group_snapshot(tuple(volumes[name]), name=f"raw-{name}")
            made.append((group.group_snapshot_id, tuple(s.snapshot_id for s in group.snapshots)))

        raw_seconds = _parallel(raw, names, workers)
        for group_id, ids in made:  # not timed: the flow run keeps its snapshots too
            direct.delete_group_snapshot(group_id, snapshot_ids=ids)

    flow_seconds = _parallel(
        lambda n: snapshots.create(env, vm_name=n, name=f"s-{n}"), names, workers
    )
    raw_rate, flow_rate = vms_count / raw_seconds, vms_count / flow_seconds
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"baseline: direct CSI group snapshot          {raw_rate:8.1f} VMs/s")
    print(
        f"csi-vm snapshot create (journaled flow)      {flow_rate:8.1f} VMs/s "
        f"= {flow_seconds / raw_seconds:.2f}x the baseline's time (target >= 50 VMs/s)"
    )
    print(f"peak RSS of this process                     {rss_mb:8.1f} MB (target < 300 MB)")


def vms_list(env: context.Env) -> list[records.VM]:
    return records.list_vms(env.store)


if __name__ == "__main__":
    main()
