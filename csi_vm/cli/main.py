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

import signal
import sys
import types
from typing import TYPE_CHECKING

import click

from csi_vm import errors
from csi_vm.cli import registry

if TYPE_CHECKING:
    from rich.console import Console

HELP = (
    "Give VM disks snapshot, restore, clone, expansion and live migration on any CSI "
    "driver: natively where the driver can, through a host-side fallback where it cannot.\n\n"
    "Start with csi-vm quickstart, then csi-vm capabilities probe --endpoint EP "
    "on your own driver."
)
# \b keeps click from reflowing the table into a paragraph.
EPILOG = "\b\n" + __doc__.split("\n\n", 1)[1].rstrip() if __doc__ else None


class _State:
    debug = False


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"csi-vm {registry.version()}")
        ctx.exit()


@click.group(
    name="csi-vm",
    cls=registry.LazyGroup,
    help=HELP,
    epilog=EPILOG,
    no_args_is_help=True,
    context_settings={"max_content_width": 100},
)
@click.option("--verbose", "-v", is_flag=True, help="Log each CSI call and retry.")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Print the version of csi-vm and exit.",
)
def app(verbose: bool, debug: bool) -> None:
    # Set up by the sub-command as it runs (registry.LazyCommand): one that
    # never logs is spared the logging module's import.
    registry.Logging.verbose = verbose
    _State.debug = debug


@app.command("version")
def version() -> None:
    """Print the version of csi-vm."""
    click.echo(f"csi-vm {registry.version()}")


def run() -> None:
    """Console-script entry point."""
    # SIGTERM ends csi-vm like Ctrl-C does: through the same cleanup paths.
    # Both are noted, so that an interrupt no command reported is reported once.
    signal.signal(signal.SIGINT, _terminate)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        # Without standalone mode click hands back the exit code of a
        # command instead of exiting: pass it on.
        code = app.main(
            args=global_options_first(sys.argv[1:]), prog_name="csi-vm", standalone_mode=False
        )
        if isinstance(code, int) and code:
            sys.exit(code)
    except errors.CsiVmError as err:
        _print_error(err)
        sys.exit(err.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as err:  # usage errors carry their own exit code
        _usage_or_crash(err)
    finally:
        # The work is done and cleaned up; a signal during interpreter
        # shutdown would only turn a clean exit status into a signal death.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


#: Options of csi-vm itself that a user may also give after the sub-command.
_GLOBAL_FLAGS = ("--debug", "--verbose", "-v")


def global_options_first(args: list[str]) -> list[str]:
    """`--debug` and `-v` anywhere before `--` move to the front, where csi-vm reads them.

    Errors tell users to run again with --debug; they add it at the end of
    the command they ran, as kubectl and helm let them.
    """
    end = args.index("--") if "--" in args else len(args)
    head = [a for a in args[:end] if a not in _GLOBAL_FLAGS]
    moved = [f for f in _GLOBAL_FLAGS if f in args[:end]]
    return [*moved, *head, *args[end:]]


def _terminate(signum: int, frame: types.FrameType | None) -> None:
    registry.INTERRUPT.set()
    raise KeyboardInterrupt


def _stderr() -> Console:
    from rich.console import Console  # noqa: PLC0415 - rich costs start-up: on errors only

    return Console(stderr=True, highlight=False)


def _print_error(err: errors.CsiVmError) -> None:
    stderr = _stderr()
    stderr.print(f"[bold red]error:[/] {err.message}", markup=True, soft_wrap=True)
    if err.hint:
        stderr.print(f"[dim]hint: {err.hint}[/]", markup=True, soft_wrap=True)


def _usage_or_crash(err: Exception) -> None:
    # Sub-commands run on typer, whose copy of click has usage errors, Exit
    # and Abort classes of its own: they are recognised by name, because
    # importing typer here would cost every command its start-up time.
    kind = registry.typer_error_kind(err)
    if kind == "exit":
        sys.exit(int(getattr(err, "exit_code", 0)))
    if kind == "abort":
        click.echo("interrupted", err=True)
        sys.exit(130)
    show = getattr(err, "show", None)
    if (isinstance(err, click.ClickException) or kind == "usage") and callable(show):
        show()
        sys.exit(int(getattr(err, "exit_code", 2)))
    if _State.debug:
        raise err
    stderr = _stderr()
    stderr.print(f"[bold red]internal error:[/] {type(err).__name__}: {err}")
    stderr.print("[dim]run again with --debug for the traceback, and please report it[/]")
    sys.exit(1)
