"""`csi-vm vm list` and `vm show`: the store read and printed, as plain click commands.

They are the commands a fleet's scripts run most, and over a fleet of any
size their work is one page of rows: start-up was nearly all of their time,
and typer's import (with pydantic's) most of that. vm_cmd declares the same
commands to typer for `csi-vm vm --help` and for the other VM commands'
group; the registry runs these plain ones whenever `vm list` or `vm show`
is asked for, and tests/unit/cli/test_vm_read.py holds the two to the same
help, errors, exit codes and output.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeAlias

import click

from csi_vm import sizes
from csi_vm.cli import plainclick, tables, vmenv
from csi_vm.cli.vmenv import Output

if TYPE_CHECKING:
    from csi_vm.store import db, records

# The store and the config are imported by the commands: `--help` needs neither.


def list_vms(
    *, fmt: Output, no_headers: bool, cfg: pathlib.Path | None, db: pathlib.Path | None
) -> None:
    """List VMs with their disks, and the node each running VM runs on.

    Example:

        csi-vm vm list -o wide
    """
    with vmenv.read_store(cfg, db) as store, vmenv.reader_may_leave():
        # Written a page at a time as it is read: the first lines of a fleet
        # of any size come at once, and memory holds one page.
        # A first page of a screenful comes out in a few milliseconds; a page
        # of 500 took 15. Columns are as wide as the first page needs (see
        # tables), a later, longer value widening them from its line on. A
        # terminal keeps its boxed table for a list of one page of 500.
        boxed = fmt.tabular and not tables.plain_pipe()
        pages = _listed(store, first=None if boxed else FIRST_PAGE)
        _show_vms(pages, fmt=fmt, no_headers=no_headers, title=lambda n: f"{n} VMs")


#: VMs on the first page of `vm list` in a pipe: a screenful
FIRST_PAGE = 50


def _listed(store: db.Store, *, first: int | None) -> Iterator[list[Listed]]:
    from csi_vm.store import records, running  # noqa: PLC0415 - see the imports

    for page in records.summary_pages(store, first=first):
        nodes = running.nodes_between(store, first=page[0].name, last=page[-1].name)
        yield [(vm, nodes.get(vm.name)) for vm in page]


def show_vm(
    *, name: str, fmt: Output, no_headers: bool, cfg: pathlib.Path | None, db: pathlib.Path | None
) -> None:
    """Show one VM: its row of `vm list`; -o yaml or json for spec, disks and CSI volumes.

    Example:

        csi-vm vm show web-1 -o yaml
    """
    from csi_vm.store import records, running  # noqa: PLC0415 - see the imports

    with vmenv.read_store(cfg, db) as store:
        vm = records.get_summary(store, name)
        run = running.find(store, name)
    node = None if run is None else run.node
    with vmenv.reader_may_leave():
        if not fmt.tabular and fmt is not Output.NAME:
            vmenv.emit(listed_dict(vm, node), fmt=fmt)
            return
        _show_vms([[(vm, node)]], fmt=fmt, no_headers=no_headers, title=lambda _: f"VM {name}")


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
        dicts = ([listed_dict(vm, node) for vm, node in page] for page in pages)
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


def listed_dict(vm: records.Summary, node: str | None) -> dict[str, object]:
    return {**vm_dict(vm), "running_on": node}


def vm_dict(vm: records.Summary) -> dict[str, object]:
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


# The plain commands: parameters as vm_cmd declares them to typer.


def _options() -> list[click.Parameter]:
    path = click.Path(path_type=pathlib.Path)
    return [
        click.Option(
            ["--output", "-o", "fmt"],
            type=plainclick.Choice([o.value for o in Output]),
            default=Output.TABLE.value,
            show_default=True,
            help=vmenv.OUTPUT_HELP,
        ),
        click.Option(["--no-headers"], is_flag=True, help=vmenv.NO_HEADERS_HELP),
        click.Option(["--config", "-c", "cfg"], type=path, help=vmenv.CONFIG_HELP),
        click.Option(["--db"], type=path, help=vmenv.DB_HELP),
    ]


def _list_callback(*, fmt: str, **given: object) -> None:
    list_vms(fmt=Output(fmt), **given)  # type: ignore[arg-type]


def _show_callback(*, fmt: str, **given: object) -> None:
    show_vm(fmt=Output(fmt), **given)  # type: ignore[arg-type]


def command(name: str) -> click.Command:
    """The plain `vm list` or `vm show`."""
    if name == "list":
        return plainclick.Command(
            "list", callback=_list_callback, params=_options(), help=plainclick.help_of(list_vms)
        )
    name_arg = plainclick.Argument(["name"], help="The VM's name.")
    return plainclick.Command(
        "show",
        callback=_show_callback,
        params=[name_arg, *_options()],
        help=plainclick.help_of(show_vm),
    )


#: the sub-commands of `vm` that run as plain click commands
PLAIN = ("list", "show")
