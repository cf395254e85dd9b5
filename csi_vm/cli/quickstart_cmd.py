"""`csi-vm quickstart`: the whole idea in one command, on this machine alone."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from typing import TYPE_CHECKING

import typer

from csi_vm import errors
from csi_vm.cli import output, signals

if TYPE_CHECKING:
    from rich.console import Console

# rich, the drivers, the probe and the VM steps are imported when the command
# runs: --help needs none of them.

# The second driver lacks what many production drivers lack, so the plan
# shows every fallback next to the native strategy.
DEGRADED = ("snapshot", "clone", "expansion")
# A mutable parameter the local driver accepts, so ModifyVolume is verified too.
LOCAL_MUTABLE = {"tier": "fast"}


def quickstart(
    workdir: pathlib.Path | None = typer.Option(
        None,
        "--workdir",
        help="Where to keep driver state and logs "
        "(default: a new temporary directory, removed afterwards).",
    ),
    keep: bool = typer.Option(False, "--keep", help="Keep the work directory for inspection."),
) -> None:
    """Start two local CSI drivers (one full, one without snapshot, clone and expansion),
    probe both and print their capability matrix with the plan; then run a small VM
    on the degraded driver: import a disk, snapshot, clone and restore it through
    the host-copy fallbacks, verify the data, and remove everything it started.

    Needs root: the local driver uses loop devices and mounts. Exits non-zero if
    any step failed.

    Example:

        sudo csi-vm quickstart --keep
    """
    if os.geteuid() != 0:
        raise errors.Rejected(
            "quickstart needs root: the local driver attaches loop devices and mounts volumes",
            hint="run it with sudo",
        )
    from rich.console import Console  # noqa: PLC0415 - see the imports

    console = Console(soft_wrap=True)  # a step is one line, also in a pipe or a log
    base = workdir or pathlib.Path(tempfile.mkdtemp(prefix="csi-vm-quickstart-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        failed = _run(base, console)
    finally:
        if workdir is None and not keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            console.print(f"work directory kept: {base}")
    if failed:
        raise typer.Exit(5)


def _run(base: pathlib.Path, console: Console) -> bool:
    from capabilities import matrix, probe  # noqa: PLC0415 - see the imports
    from csi_vm.cli import driverproc, quickstart_vm  # noqa: PLC0415 - see the imports

    drivers = [
        driverproc.LocalDriver(
            name="local-full",
            endpoint=f"unix://{base}/full.sock",
            state_dir=base / "full",
            node_id="node-a",
        ),
        driverproc.LocalDriver(
            name="local-degraded",
            endpoint=f"unix://{base}/degraded.sock",
            state_dir=base / "degraded",
            node_id="node-a",
            without=DEGRADED,
        ),
    ]
    console.print(f"[bold]1.[/] starting {len(drivers)} local CSI drivers in {base}")
    with driverproc.running(drivers, log_dir=base):
        console.print("[bold]2.[/] probing them (declared and verified) in parallel")
        targets = [
            probe.Target(label=d.name, endpoint=d.endpoint, modify_parameters=LOCAL_MUTABLE)
            for d in drivers
        ]
        options = probe.Options(journal_dir=base / "journals", work_dir=base / "node")
        report, interrupted = signals.run_cancellable(
            lambda cancel: matrix.run(targets, options, cancel=cancel)
        )
        output.emit(report, fmt=output.Format.TABLE, path=None)
        console.print("[bold]3.[/] probe volumes removed")
        problems = [f"{row.driver.label}: {row.error}" for row in report.rows if row.error]
        degraded = report.rows[1]
        if not problems and not interrupted:
            problems += quickstart_vm.run(
                base, endpoint=drivers[1].endpoint, report=degraded, console=console
            )
    console.print("[bold]6.[/] drivers stopped")
    problems += [
        f"{row.driver.label}: {w}"
        for row in report.rows
        for w in row.warnings
        if w.startswith("left behind")
    ]
    for line in problems:
        console.print(f"[red]failed:[/] {line}")
    if interrupted:
        raise typer.Exit(signals.INTERRUPTED)
    return bool(problems)
