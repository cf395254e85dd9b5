"""The `csi-vm` command: sub-command groups, and one place that turns errors into exit codes.

Exit codes:
  0    success
  1    an unexpected error (a bug: please report it with the traceback from --debug)
  2    the request cannot work as given (bad input, unknown object, refused by the driver)
  3    the driver or host does not offer what was asked, and there is no fallback
  4    a driver or service did not answer (down, hung) after retries
  5    an operation failed and was rolled back
  6    stopped to protect data: nothing more was done
  130  interrupted (SIGINT or SIGTERM); what was started has been cleaned up
"""

from __future__ import annotations

import logging
import signal
import sys
import types

import click
import typer
from rich.console import Console

from csi_vm import errors
from csi_vm.cli import (
    agent_cmd,
    capabilities_cmd,
    controller_cmd,
    disk_cmd,
    image_cmd,
    localdriver_cmd,
    quickstart_cmd,
    run_cmd,
    vm_cmd,
)

app = typer.Typer(
    name="csi-vm",
    help=(
        "Give VM disks snapshot, restore, clone, expansion and live migration on any CSI "
        "driver: natively where the driver can, through a host-side fallback where it cannot.\n\n"
        "Start with `csi-vm quickstart`, then `csi-vm capabilities probe --endpoint EP` "
        "on your own driver."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
)
app.add_typer(capabilities_cmd.app, name="capabilities")
for _name in ("start", "stop", "status", "console"):
    vm_cmd.app.command(_name)(getattr(run_cmd, _name))
app.add_typer(vm_cmd.app, name="vm")
app.add_typer(controller_cmd.app, name="controller")
app.add_typer(agent_cmd.app, name="node-agent")
app.add_typer(disk_cmd.disk_app, name="disk")
app.add_typer(disk_cmd.snap_app, name="snapshot")
app.add_typer(image_cmd.app, name="image")
app.command("clone")(vm_cmd.clone)
app.command("resume")(vm_cmd.resume)
app.command("migrate")(run_cmd.migrate)
app.command(
    "localdriver",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    add_help_option=False,
)(localdriver_cmd.localdriver)
app.command("quickstart")(quickstart_cmd.quickstart)

_stderr = Console(stderr=True, highlight=False)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each CSI call and retry."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of unexpected errors."),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _State.debug = debug


class _State:
    debug = False


def run() -> None:
    """Console-script entry point."""
    # SIGTERM ends csi-vm like Ctrl-C does: through the same cleanup paths.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        # Without standalone mode click hands back the code of typer.Exit
        # instead of exiting: pass it on.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except errors.CsiVmError as err:
        _stderr.print(f"[bold red]error:[/] {err.message}", markup=True, soft_wrap=True)
        if err.hint:
            _stderr.print(f"[dim]hint: {err.hint}[/]", markup=True, soft_wrap=True)
        sys.exit(err.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        _stderr.print("interrupted")
        sys.exit(130)
    except KeyboardInterrupt:
        _stderr.print("interrupted")
        sys.exit(130)
    except Exception as err:  # click's usage errors carry their own exit code
        _usage_or_crash(err)
    finally:
        # The work is done and cleaned up; a signal during interpreter
        # shutdown would only turn a clean exit status into a signal death.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _terminate(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def _usage_or_crash(err: Exception) -> None:

    # typer 0.2x carries its own copy of click, whose usage errors are not
    # click's classes: without the second check they were reported as crashes.
    show = getattr(err, "show", None)
    if isinstance(err, (click.ClickException, typer.TyperException)) and callable(show):
        show()
        sys.exit(int(getattr(err, "exit_code", 2)))
    if _State.debug:
        raise err
    _stderr.print(f"[bold red]internal error:[/] {type(err).__name__}: {err}")
    _stderr.print("[dim]run again with --debug for the traceback, and please report it[/]")
    sys.exit(1)
