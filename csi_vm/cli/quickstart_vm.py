"""The VM half of `csi-vm quickstart`: a small VM on the degraded driver, through the fallbacks."""

from __future__ import annotations

import contextlib
import pathlib
import random

import yaml
from rich.console import Console

from capabilities import model
from csi_vm import config, errors, spec
from csi_vm.cli import vmenv
from csi_vm.csi import client as csi_client
from csi_vm.flows import context, offline_disk, snapshots, vms
from csi_vm.store import db, records

MIB = 1024 * 1024
DISK_SIZE = 16 * MIB
DRIVER = "local-degraded"


def run(
    base: pathlib.Path, *, endpoint: str, report: model.DriverReport, console: Console
) -> list[str]:
    """Create, import, snapshot, clone, verify and remove a VM; returns the problems found."""
    cfg_file = base / "config.yaml"
    cfg_file.write_text(
        yaml.safe_dump({"node": "node-a", "drivers": {DRIVER: {"endpoint": endpoint}}})
    )
    store = db.Store(base / "csi-vm.db")
    # The probe just ran: reuse its verified report instead of probing again.
    records.save_caps(store, DRIVER, report.model_dump_json(by_alias=True))
    env = context.Env(cfg=config.load(cfg_file), store=store, state_dir=base / "state")
    try:
        return _demo(env, base, endpoint, console)
    finally:
        env.close()


def _demo(env: context.Env, base: pathlib.Path, endpoint: str, console: Console) -> list[str]:
    image = base / "demo-disk.raw"
    want = _pattern(image)
    vm_spec = spec.VMSpec.model_validate(
        {
            "name": "demo",
            "disks": [
                {
                    "name": "root",
                    "size": DISK_SIZE,
                    "driver": DRIVER,
                    "source": {"image": str(image)},
                }
            ],
        }
    )
    console.print(
        f"[bold]4.[/] VM 'demo' on {DRIVER}: "
        f"import a {DISK_SIZE // MIB} MiB disk, snapshot it, clone it"
    )
    vmenv.show_plan(vms.create(env, vm_spec), fmt=vmenv.Output.TABLE, dry_run=False)
    _, plan = snapshots.create(env, vm_name="demo", name="demo-snap")
    vmenv.show_plan(plan, fmt=vmenv.Output.TABLE, dry_run=False)
    vmenv.show_plan(
        vms.clone(env, source="demo", target="demo-clone"), fmt=vmenv.Output.TABLE, dry_run=False
    )
    vmenv.show_plan(
        vms.restore(env, snapshot="demo-snap", as_vm="demo-restored"),
        fmt=vmenv.Output.TABLE,
        dry_run=False,
    )
    problems = []
    for vm in ("demo", "demo-clone", "demo-restored"):
        out = base / f"{vm}.raw"
        offline_disk.export(env, vm=vm, disk="root", file=out, fmt="raw")
        same = out.read_bytes() == want
        console.print(
            f"   data of {vm}: "
            + ("[green]identical to the imported image[/]" if same else "[red]DIFFERENT[/]")
        )
        if not same:
            problems.append(f"{vm}: exported data differs from the imported image")
    console.print("[bold]5.[/] removing the VMs and the snapshot")
    snapshots.delete(env, name="demo-snap")
    for vm in ("demo", "demo-clone", "demo-restored"):
        vms.delete(env, name=vm)
    return problems + _leftovers(endpoint)


def _leftovers(endpoint: str) -> list[str]:
    with csi_client.Client(endpoint) as client:
        left = [e.volume.volume_id for e in client.list_volumes()]
        with contextlib.suppress(errors.Unsupported):
            left += [s.snapshot_id for s in client.list_snapshots()]
    return [f"left behind on {DRIVER}: {', '.join(left)}"] if left else []


def _pattern(path: pathlib.Path) -> bytes:
    """A sparse raw image with random data in a few places."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    data = bytearray(DISK_SIZE)
    for _ in range(8):
        offset = rng.randrange(0, DISK_SIZE // MIB) * MIB
        data[offset : offset + 256 * 1024] = rng.randbytes(256 * 1024)
    with path.open("wb") as stream:
        stream.truncate(DISK_SIZE)
        for offset in range(0, DISK_SIZE, MIB):
            chunk = data[offset : offset + MIB]
            if any(chunk):
                stream.seek(offset)
                stream.write(chunk)
    return bytes(data)
