"""`csi-vm vm ...` (`csi-vm clone` and `csi-vm resume` are clone_cmd's)."""

from __future__ import annotations

import pathlib

import typer

from csi_vm.cli import vm_read, vmenv
from csi_vm.cli.vmenv import CONFIG_HELP, DB_HELP, Output

# The config, the flows and the store are imported by the commands that use
# them: `--help` loads this module and needs none of them.

app = typer.Typer(
    help="Create, list, show and delete VMs (their disks on CSI volumes).", no_args_is_help=True
)

CFG = typer.Option(None, "--config", "-c", help=CONFIG_HELP)
DB = typer.Option(None, "--db", help=DB_HELP)
FMT = typer.Option(Output.TABLE, "--output", "-o", help=vmenv.OUTPUT_HELP)
NO_HEADERS = typer.Option(False, "--no-headers", help=vmenv.NO_HEADERS_HELP)
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
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Create a VM's disks as CSI volumes: blank, from an image, a snapshot or another VM's disk.

    Disk sizes are Kubernetes quantities: 64Mi and 20Gi are powers of 1024,
    20G is 20 x 1000^3 (20GB is read the same way, with a note).

    Example:

        csi-vm vm create -f examples/vm.yaml --dry-run
    """
    from csi_vm import spec  # noqa: PLC0415 - see the imports
    from csi_vm.flows import vms  # noqa: PLC0415 - see the imports

    notes: list[str] = []
    vm_spec = spec.load(file, notes=notes)
    for note in notes:
        vmenv.err_console.print(f"note: {note}", markup=False)
    with vmenv.environment(cfg, db) as env:
        plan = vms.plan_create(env, vm_spec) if dry_run else vms.create(env, vm_spec)
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run, no_headers=no_headers)


@app.command("list")
def list_(
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    # Run by the registry as vm_read's plain command; declared here for
    # `vm --help` and as the twin its tests hold it to.
    vm_read.list_vms(fmt=fmt, no_headers=no_headers, cfg=cfg, db=db)


list_.__doc__ = vm_read.list_vms.__doc__


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The VM's name."),
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    vm_read.show_vm(name=name, fmt=fmt, no_headers=no_headers, cfg=cfg, db=db)


show.__doc__ = vm_read.show_vm.__doc__


@app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The VM to delete."),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Delete a VM and its volumes (its snapshots are kept: restore them with --as).

    Example:

        csi-vm vm delete web-1 --dry-run
    """
    from csi_vm.flows import vms  # noqa: PLC0415 - see the imports
    from csi_vm.store import records, running  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        vm = records.get_vm(env.store, name)
        running.require_stopped(env.store, name, what="deleting it")  # --dry-run refuses too
        if not dry_run:
            vms.delete(env, name=name)
    if not fmt.tabular:
        vmenv.emit(
            {"operation": "delete", "dry_run": dry_run, **vm_read.vm_dict(records.summary(vm))},
            fmt=fmt,
        )
        return
    volumes = ", ".join(d.volume_id for d in vm.disks)
    verb = "would delete" if dry_run else "deleted"
    vmenv.console.print(f"{verb} VM {name} and its volumes {volumes}")
