"""`csi-vm vm ...`, `csi-vm clone` and `csi-vm resume`."""

from __future__ import annotations

import pathlib

import typer
from rich.table import Table

from csi_vm import config, spec
from csi_vm.cli import vmenv
from csi_vm.cli.vmenv import CONFIG_HELP, DB_HELP, Output
from csi_vm.flows import engine, online, vms
from csi_vm.store import journal, records, running

app = typer.Typer(
    help="Create, list, show and delete VMs (their disks on CSI volumes).", no_args_is_help=True
)

CFG = typer.Option(None, "--config", "-c", help=CONFIG_HELP)
DB = typer.Option(None, "--db", help=DB_HELP)
FMT = typer.Option(Output.TABLE, "--output-format", "-o", help="table, json or yaml.")
DRY = typer.Option(
    False, "--dry-run", help="Print the plan (strategy per disk and why) and change nothing."
)


@app.command("create")
def create(
    file: pathlib.Path = typer.Option(
        ..., "--file", "-f", help="VM spec (YAML); see examples/vm.yaml."
    ),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Create a VM's disks as CSI volumes: blank, from an image, a snapshot or another VM's disk."""
    vm_spec = spec.load(file)
    with vmenv.environment(cfg, db) as env:
        plan = vms.plan_create(env, vm_spec) if dry_run else vms.create(env, vm_spec)
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run)


@app.command("list")
def list_(fmt: Output = FMT, cfg: pathlib.Path | None = CFG, db: pathlib.Path | None = DB) -> None:
    """List VMs with their disks, and the node each running VM runs on."""
    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env:
        found = records.list_vms(env.store)
        nodes = {run.vm: run.node for run in running.list_all(env.store)}
    if fmt is not Output.TABLE:
        vmenv.emit([{**_vm_dict(vm), "running_on": nodes.get(vm.name)} for vm in found], fmt=fmt)
        return
    table = Table(title=f"{len(found)} VMs", title_justify="left")
    for column in ("name", "running on", "vcpus", "memory", "disks"):
        table.add_column(column)
    for vm in found:
        disks = ", ".join(f"{d.name} ({_size(d.size)} {d.mode} on {d.driver})" for d in vm.disks)
        where = nodes.get(vm.name, "-")
        table.add_row(vm.name, where, str(vm.spec.vcpus), f"{vm.spec.memory_mib} MiB", disks)
    vmenv.console.print(table)


@app.command("show")
def show(
    name: str, fmt: Output = FMT, cfg: pathlib.Path | None = CFG, db: pathlib.Path | None = DB
) -> None:
    """Show one VM: spec, disks and the CSI volumes behind them."""
    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env:
        vm = records.get_vm(env.store, name)
    vmenv.emit(_vm_dict(vm), fmt=Output.YAML if fmt is Output.TABLE else fmt)


@app.command("delete")
def delete(
    name: str,
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Delete a VM and its volumes (its snapshots are kept: restore them with --as)."""
    with vmenv.environment(cfg, db) as env:
        vm = records.get_vm(env.store, name)
        if not dry_run:
            vms.delete(env, name=name)
    if fmt is not Output.TABLE:
        vmenv.emit({"operation": "delete", "dry_run": dry_run, **_vm_dict(vm)}, fmt=fmt)
        return
    volumes = ", ".join(d.volume_id for d in vm.disks)
    verb = "would delete" if dry_run else "deleted"
    vmenv.console.print(f"{verb} VM {name} and its volumes {volumes}")


def clone(
    source: str = typer.Argument(..., help="The VM to clone (it is only read)."),
    target: str = typer.Argument(..., help="Name of the new VM."),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Clone a VM: CSI clone, else snapshot + restore, else a host copy, per disk.

    A running VM is cloned from an online snapshot, taken and removed on the way.
    """
    config.require_name(target, what="VM name")
    with vmenv.environment(cfg, db) as env:
        if running.find(env.store, source) is not None:
            plan = online.plan_snapshot(env, records.get_vm(env.store, source))
            if not dry_run:
                plan = online.clone(env, source=source, target=target)
        elif dry_run:
            plan = vms.plan_clone(env, source=source, target=target)
        else:
            plan = vms.clone(env, source=source, target=target)
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run)


def resume(cfg: pathlib.Path | None = CFG, db: pathlib.Path | None = DB) -> None:
    """Finish or roll back operations interrupted by a crash (every command does this first)."""
    with vmenv.environment(cfg, db, quiet=True, resume=False) as env:
        got = engine.settle(env, retry_pending=True)
        recent = journal.recent(env.store, limit=5)
    vmenv.console.print(f"{len(got.done)} interrupted operations handled")
    for line in got.done:
        vmenv.console.print(f"  {line}")
    for flow in recent:
        vmenv.console.print(f"  {flow.kind} {flow.id} of {flow.vm}: {flow.state} {flow.error}")
    if got.failed is not None:
        # Still pending (its driver does not answer): the exit code says so.
        raise got.failed


def _vm_dict(vm: records.VM) -> dict[str, object]:
    return {
        "name": vm.name,
        "vcpus": vm.spec.vcpus,
        "memory_mib": vm.spec.memory_mib,
        "disks": [
            {
                "name": d.name,
                "size": d.size,
                "mode": d.mode.value,
                "driver": d.driver,
                "volume_id": d.volume_id,
            }
            for d in vm.disks
        ],
    }


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:g} {unit}" if unit == "B" else f"{n:.4g} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
