"""`csi-vm vm start|stop|status|console` and `csi-vm migrate`: VMs that run."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import typer

from csi_vm import errors
from csi_vm.cli import vmenv
from csi_vm.cli.vm_cmd import CFG, DB, DRY, FMT
from csi_vm.cli.vmenv import Output

if TYPE_CHECKING:
    from csi_vm.flows import vmrun

# The flows are imported by the commands that use them: `--help` needs none.


def start(
    name: str = typer.Argument(..., help="The VM's name."),
    node: str = typer.Option("", "--node", "-n", help="Node to run on (default: this node)."),
    kernel: pathlib.Path | None = typer.Option(None, help="Boot this kernel directly."),
    initrd: pathlib.Path | None = typer.Option(None, help="Initramfs for --kernel."),
    cmdline: str = typer.Option("", help="Kernel command line for --kernel."),
    counter_guest: bool = typer.Option(
        False, "--counter-guest", help="Boot the test guest that writes a counter to its disk."
    ),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Start a VM: publish its disks on the node, define and start its libvirt domain.

    Example:

        csi-vm vm start web-1 --node node-b
    """
    from csi_vm.flows import vmrun  # noqa: PLC0415 - see the imports

    boot = _boot(kernel=kernel, initrd=initrd, cmdline=cmdline, counter_guest=counter_guest)
    with vmenv.environment(cfg, db) as env:
        if dry_run:
            vmenv.show_plan(vmrun.plan_start(env, vm_name=name, node=node), fmt=fmt, dry_run=True)
            return
        status = vmrun.start(env, vm_name=name, node=node, boot=boot)
    _show(status, fmt=fmt)


def _boot(
    *, kernel: pathlib.Path | None, initrd: pathlib.Path | None, cmdline: str, counter_guest: bool
) -> vmrun.Boot | None:
    from csi_vm.flows import vmrun  # noqa: PLC0415 - see the imports

    if counter_guest:
        if kernel or initrd:
            raise errors.InvalidInput("give either --counter-guest or --kernel/--initrd")
        return vmrun.counter_guest()
    if kernel is None:
        return None
    if initrd is None:
        raise errors.InvalidInput("--kernel needs --initrd")
    return vmrun.Boot(kernel=kernel, initramfs=initrd, cmdline=cmdline)


def stop(
    name: str = typer.Argument(..., help="The VM's name."),
    grace: float = typer.Option(30.0, help="Seconds to wait for the guest to power off."),
    dry_run: bool = DRY,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Stop a VM (power off, then force), unpublish and unstage its disks.

    Example:

        csi-vm vm stop web-1 --grace 60
    """
    from csi_vm.flows import vmrun  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        if dry_run:
            plan = vmrun.plan_stop(env, vm_name=name)
            vmenv.show_plan(plan, fmt=Output.TABLE, dry_run=True)
            return
        run = vmrun.stop(env, vm_name=name, grace_s=grace)
    vmenv.console.print(f"stopped {name} on {run.node}")


def status(
    name: str = typer.Argument(..., help="The VM's name."),
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Where a VM runs and in which state; a crashed VM is reported (exit code 5).

    Example:

        csi-vm vm status web-1 -o json
    """
    from csi_vm.flows import vmrun  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env:
        got = vmrun.status(env, vm_name=name)
    _show(got, fmt=fmt)
    if got.problem:
        raise typer.Exit(5)


def console(
    name: str = typer.Argument(..., help="The VM's name."),
    lines: int = typer.Option(40, "--lines", "-l", help="Show the last N lines (0: all)."),
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Print the VM's serial console log.

    Example:

        csi-vm vm console web-1 --lines 100
    """
    from csi_vm.flows import vmrun  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env:
        path = vmrun.console(env, vm_name=name)
    text = path.read_text(errors="replace").splitlines()
    typer.echo("\n".join(text[-lines:] if lines else text))


def _show(status: vmrun.Status, *, fmt: Output) -> None:
    data = {
        "vm": status.vm,
        "node": status.node,
        "state": status.state,
        "reason": status.reason,
        "problem": status.problem,
        "console": str(status.console) if status.console else None,
    }
    if not fmt.tabular:
        vmenv.emit(data, fmt=fmt)
        return
    where = f" on {status.node}" if status.node else ""
    line = f"{status.vm}{where}: {status.state} ({status.reason})"
    vmenv.console.print(line + (f" [red]{status.problem}[/]" if status.problem else ""))


def migrate(
    name: str = typer.Argument(..., help="The VM's name."),
    to: str = typer.Option(..., "--to", help="The node to move the VM to."),
    bandwidth: int = typer.Option(
        0, "--bandwidth", help="Limit the copy to this many MiB/s (0: no limit)."
    ),
    allow_downtime: bool = typer.Option(
        False,
        "--allow-downtime",
        help="When live migration is impossible, stop the VM, copy its disks, start it there.",
    ),
    cold: bool = typer.Option(
        False, "--cold", help="Migrate cold (stopped) outright; needs --allow-downtime."
    ),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Live-migrate a running VM to another node.

    Volumes shared across nodes are published on the target and the VM moves
    without copying them; otherwise its disks are copied into new volumes on
    the target while it runs, and the old ones are retired after success.
    A cold migration (the VM stopped meanwhile) happens only with --allow-downtime.

    Example:

        csi-vm migrate web-1 --to node-b --dry-run
    """
    from csi_vm.flows import migrate as migrate_flow  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        if dry_run:
            plan = migrate_flow.plan(
                env, vm_name=name, to=to, allow_downtime=allow_downtime, cold=cold
            )
            vmenv.show_plan(plan, fmt=fmt, dry_run=True)
            return
        result = migrate_flow.migrate(
            env, vm_name=name, to=to, bandwidth_mib_s=bandwidth,
            allow_downtime=allow_downtime, cold=cold,
        )  # fmt: skip
    if not fmt.tabular:
        vmenv.emit(result.as_dict(), fmt=fmt)
        return
    vmenv.console.print(
        f"migrated {name} {result.source} -> {result.target} by {result.strategy}: "
        f"downtime {result.downtime_ms} ms, {result.bytes_copied} bytes copied, "
        f"{result.duration_ms / 1000:.1f} s in all"
    )
