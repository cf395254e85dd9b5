"""The sub-commands of `csi-vm`, each imported only when it runs or shows its help.

A command module brings the Kubernetes client, libvirt, gRPC or the copy
engine with it, and typer itself builds its parameters through pydantic: if
the top-level command imported them all, `csi-vm --help` would take over a
second. The top-level group is therefore plain click and knows each command
by name and one line of help; the command's typer app is loaded on use and
handed the rest of the command line, exactly as if typer had parsed all of it.
A `plain` entry is a click command of its own and runs without typer at all.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

import csi_vm

#: the name typer is imported under; its classes are looked up there, never imported
_TYPER = "typer"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One sub-command: where its typer app or function lives, and its line of help."""

    name: str
    target: str  # "module:attribute"
    help: str
    group: bool = True  # a typer app (True) or a single command function
    wiring: Callable[[], None] | None = None  # adds commands of other modules first
    context_settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    add_help_option: bool = True
    #: the target is a plain click command, run without typer (see image_cmd)
    plain: bool = False
    #: sub-commands of a typer group that run as plain click commands, and the
    #: "module:function" that makes one from its name (see vm_read)
    plain_commands: tuple[str, ...] = ()
    plain_target: str = ""


def _wire_vm() -> None:
    """`vm start|stop|status|console` live in run_cmd, beside `migrate`."""
    from csi_vm.cli import run_cmd, vm_cmd  # noqa: PLC0415 - loaded with its command

    known = {info.name for info in vm_cmd.app.registered_commands}
    for name in ("start", "stop", "status", "console"):
        if name not in known:
            vm_cmd.app.command(name)(getattr(run_cmd, name))


_CLI = "csi_vm.cli."

#: in the order `csi-vm --help` lists them
ENTRIES: tuple[Entry, ...] = (
    Entry(
        "clone",
        _CLI + "clone_cmd:clone",
        "Clone a VM: CSI clone, else snapshot + restore, else a host copy, per disk.",
        group=False,
    ),
    Entry(
        "resume",
        _CLI + "clone_cmd:resume",
        "Finish or roll back operations interrupted by a crash.",
        group=False,
    ),
    Entry("migrate", _CLI + "run_cmd:migrate", "Live-migrate a running VM to another node.", False),
    Entry(
        "localdriver",
        _CLI + "localdriver_cmd:localdriver",
        "Run the local reference CSI driver (sparse files, loop devices; needs root).",
        group=False,
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            "help_option_names": [],
        },
        add_help_option=False,
    ),
    Entry(
        "quickstart",
        _CLI + "quickstart_cmd:quickstart",
        "Start two local CSI drivers, probe them, and run a small VM through the fallbacks.",
        group=False,
    ),
    Entry(
        "capabilities",
        _CLI + "capabilities_cmd:app",
        "Find out what a CSI driver declares and what really works.",
    ),
    Entry(
        "vm",
        _CLI + "vm_cmd:app",
        "Create, list, show and delete VMs (their disks on CSI volumes).",
        wiring=_wire_vm,
        plain_commands=("list", "show"),
        plain_target=_CLI + "vm_read:command",
    ),
    Entry(
        "controller",
        _CLI + "controller_cmd:app",
        "The Kubernetes controller (installed by the csi-vm Helm chart).",
    ),
    Entry(
        "node-agent",
        _CLI + "agent_cmd:app",
        "The node agent (the csi-vm Helm chart's DaemonSet): runs the guests of its node.",
    ),
    Entry(
        "disk", _CLI + "disk_cmd:disk_app", "Import, export and expand the disks of stopped VMs."
    ),
    Entry(
        "snapshot",
        _CLI + "disk_cmd:snap_app",
        "VM snapshots: CSI snapshots where the driver can, host copies where not.",
    ),
    Entry(
        "image",
        _CLI + "image_cmd:app",
        "Copy and convert disk images (raw, qcow2) between files and block devices.",
        plain=True,
    ),
)


def load(entry: Entry) -> click.Command:
    """The typer command of ``entry``, inside a root like the one it had before.

    The root gives usage lines and errors their full path (`csi-vm vm list`)
    and the same help rendering as the top-level group: click's plain text
    (typer's rich rendering would import rich's markdown and traceback
    modules, about 70 ms, on every --help).
    typer's command is of its own copy of click, so it is run by ``main``,
    never attached to the plain click group.
    """
    if entry.plain:
        return click.Group("csi-vm", commands=[_target(entry)])
    import typer  # noqa: PLC0415 - typer and pydantic cost start-up: only when a command runs

    from csi_vm.cli import coercion, helpfmt  # noqa: PLC0415 - patch typer: loaded with it

    helpfmt.install()
    coercion.install()
    if entry.wiring is not None:
        entry.wiring()
    target = _target(entry)
    root = typer.Typer(name="csi-vm", add_completion=False, rich_markup_mode=None)
    if entry.group:
        root.add_typer(target, name=entry.name)
    else:
        root.command(
            entry.name,
            context_settings=entry.context_settings or None,
            add_help_option=entry.add_help_option,
        )(target)
        # A root of one command would become that command: a callback keeps it a group.
        root.callback()(_no_options)
    command = typer.main.get_command(root)
    helpfmt.keep_layouts(command)
    return command  # type: ignore[return-value]


def load_plain(entry: Entry, name: str) -> click.Command:
    """The plain click command `name` of the group ``entry``, inside roots like typer's."""
    from csi_vm.cli import plainclick  # noqa: PLC0415 - loaded with its command

    make = _attribute(entry.plain_target)
    group = plainclick.Group(entry.name, help=entry.help, commands=[make(name)])
    return click.Group("csi-vm", commands=[group])


def _target(entry: Entry) -> Any:
    return _attribute(entry.target)


def _attribute(target: str) -> Any:
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def _no_options() -> None:
    """csi-vm"""


#: the exit status of an interrupted command (csi_vm/cli/main.py's table)
_INTERRUPTED = 130
#: set by main's handler when SIGINT or SIGTERM raised KeyboardInterrupt; a
#: command that catches signals itself (signals.run_cancellable) reports its
#: own interrupt, and leaves this clear
INTERRUPT = threading.Event()


class Logging:
    """-v/--verbose of csi-vm, set by its group before a sub-command runs."""

    verbose = False

    @classmethod
    def setup(cls) -> None:
        import logging  # noqa: PLC0415 - `vm list` and `vm show` never log: not for them

        level = logging.DEBUG if cls.verbose else logging.WARNING
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


class LazyCommand(click.Command):
    """A stand-in for one sub-command: takes the rest of the line unparsed."""

    def __init__(self, entry: Entry) -> None:
        super().__init__(entry.name, help=entry.help, short_help=entry.help, add_help_option=False)
        self.entry = entry

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.args = list(args)
        return []

    def invoke(self, ctx: click.Context) -> Any:
        plain = ctx.args[0] if ctx.args and ctx.args[0] in self.entry.plain_commands else None
        if plain is None or Logging.verbose:
            Logging.setup()
        command = load(self.entry) if plain is None else load_plain(self.entry, plain)
        prog = ctx.parent.info_name if ctx.parent is not None else "csi-vm"
        code = command.main(
            args=[self.entry.name, *ctx.args], prog_name=prog, standalone_mode=False
        )
        if code == _INTERRUPTED and INTERRUPT.is_set():
            # typer turns Ctrl-C (and so SIGTERM) into a silent Exit(130).
            click.echo("interrupted", err=True)
        # Without standalone mode typer hands back its Exit's code: make it
        # click's, so that click's own main (standalone or not) passes it on.
        if isinstance(code, int) and code:
            raise click.exceptions.Exit(code)
        return code


class LazyGroup(click.Group):
    """The top-level group: its own commands, then the lazily loaded ones, in ENTRIES order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [entry.name for entry in ENTRIES] + list(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for entry in ENTRIES:
            if entry.name == cmd_name:
                return LazyCommand(entry)
        return super().get_command(ctx, cmd_name)


def version() -> str:
    """The package's version."""
    return csi_vm.__version__


def typer_error_kind(err: BaseException) -> str | None:
    """ "exit", "abort" or "usage" for typer's own control-flow and usage errors, else None.

    Looked up in sys.modules: an error of typer's means typer is loaded, and
    importing it for the check would cost commands that never used it.
    """
    typer = sys.modules.get(_TYPER)
    if typer is None:
        return None
    if isinstance(err, typer.Exit):
        return "exit"
    if isinstance(err, typer.Abort):
        return "abort"
    if isinstance(err, typer.TyperException):
        return "usage"
    return None
