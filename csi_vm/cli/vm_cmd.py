"""`csi-vm vm ...` (`csi-vm clone` and `csi-vm resume` are clone_cmd's)."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeAlias

import typer

from csi_vm import sizes
from csi_vm.cli import tables, vmenv
from csi_vm.cli.vmenv import CONFIG_HELP, DB_HELP, Output

if TYPE_CHECKING:
    from csi_vm.store import db, records

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
    """List VMs with their disks, and the node each running VM runs on.

    Example:

        csi-vm vm list -o wide
    """
    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env, vmenv.reader_may_leave():
        # Written a page at a time as it is read: the first lines of a fleet
        # of any size come at once, and memory holds one page.
        _show_vms(_listed(env.store), fmt=fmt, no_headers=no_headers, title=lambda n: f"{n} VMs")


def _listed(store: db.Store) -> Iterator[list[Listed]]:
    from csi_vm.store import records, running  # noqa: PLC0415 - see the imports

    for page in records.summary_pages(store):
        nodes = running.nodes_between(store, first=page[0].name, last=page[-1].name)
        yield [(vm, nodes.get(vm.name)) for vm in page]


@app.command("show")
def show(
    name: str = typer.Argument(..., help="The VM's name."),
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Show one VM: its row of `vm list`; -o yaml or json for spec, disks and CSI volumes.

    Example:

        csi-vm vm show web-1 -o yaml
    """
    from csi_vm.store import records, running  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env:
        vm = records.get_summary(env.store, name)
        run = running.find(env.store, name)
    node = None if run is None else run.node
    if not fmt.tabular and fmt is not Output.NAME:
        vmenv.emit(_listed_dict(vm, node), fmt=fmt)
        return
    _show_vms(
        [[(vm, node)]],
        fmt=fmt,
        no_headers=no_headers,
        title=lambda _: f"VM {name}",
    )


VM_COLUMNS = (
    tables.Column("name"),
    tables.Column("running on"),
    tables.Column("vcpus"),
    tables.Column("memory"),
    tables.Column("disks"),
    tables.Column("volumes", wide=True),
)


#: a VM as listed, with the node it runs on (None: stopped)
Listed: TypeAlias = "tuple[records.Summary, str | None]"


def _show_vms(
    pages: Iterable[list[Listed]], *, fmt: Output, no_headers: bool, title: Callable[[int], str]
) -> None:
    if not fmt.tabular:
        dicts = ([_listed_dict(vm, node) for vm, node in page] for page in pages)
        vmenv.emit_pages(dicts, fmt=fmt)
        return
    tables.stream_stdout(
        lambda: vmenv.console,
        columns=VM_COLUMNS,
        pages=([_vm_row(vm, node) for vm, node in page] for page in pages),
        layout=fmt.layout(no_headers=no_headers),
        title=title,
    )


# A fleet has few distinct sizes: 300,000 conversions of a list become a few.
_binary = functools.lru_cache(maxsize=1024)(sizes.binary)


def _vm_row(vm: records.Summary, node: str | None) -> tuple[str, ...]:
    return (
        vm.name,
        node or "-",
        str(vm.vcpus),
        _binary(vm.memory_mib * 1024 * 1024),
        ", ".join(f"{d.name} ({_binary(d.size)} {d.mode} on {d.driver})" for d in vm.disks),
        ", ".join(f"{d.name}={d.volume_id}" for d in vm.disks),
    )


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
            {"operation": "delete", "dry_run": dry_run, **_vm_dict(records.summary(vm))}, fmt=fmt
        )
        return
    volumes = ", ".join(d.volume_id for d in vm.disks)
    verb = "would delete" if dry_run else "deleted"
    vmenv.console.print(f"{verb} VM {name} and its volumes {volumes}")


def _listed_dict(vm: records.Summary, node: str | None) -> dict[str, object]:
    return {**_vm_dict(vm), "running_on": node}


def _vm_dict(vm: records.Summary) -> dict[str, object]:
    return {
        "name": vm.name,
        "vcpus": vm.vcpus,
        "memory_mib": vm.memory_mib,
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
