"""`csi-vm image ...`: the copy engine on its own, for image files and block devices.

A plain click group, not typer: `image copy` is timed as a whole process
against qemu-img, and typer's import alone was a third of its start-up.
plainclick keeps its help and errors as the typer commands have them.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from csi_vm import errors, sizes
from csi_vm.cli import plainclick, signals
from csi_vm.copy import model

if TYPE_CHECKING:
    from csi_vm.copy import engine

app = plainclick.Group(
    "image",
    help="Copy and convert disk images (raw, qcow2) between files and block devices.",
    no_args_is_help=True,
)


class Report(enum.StrEnum):
    """-o/--output of a copy: one line for people, the figures for scripts."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def _path(name: str, help: str) -> plainclick.Argument:
    return plainclick.Argument([name], help=help, type=click.Path(path_type=pathlib.Path))


def _flag(name: str, help: str) -> click.Option:
    return click.Option([name], is_flag=True, help=help)


def _copy_params() -> list[click.Parameter]:
    return [
        _path("source", "Image to read: a raw or qcow2 file, or a block device."),
        _path("target", "Where to write: a new file, or (with --force) a file or block device."),
        click.Option(
            ["--format", "output"],
            type=plainclick.Choice([f.value for f in model.Format]),
            default=model.Format.RAW.value,
            show_default=True,
            help="Format of the target: raw or qcow2.",
        ),
        _flag("--verify", "Compare checksums of source and target after the copy."),
        _flag("--force", "Replace an existing target file, or write over a block device."),
        _flag(
            "--target-zeroed",
            "The target device reads as zeros (a fresh volume): skip zeroing its free ranges.",
        ),
        click.Option(
            ["--min-size"],
            metavar="TEXT",
            help="Make a target file at least this large: a copy into a larger disk, "
            "whose part past the image reads as zeros. A device keeps its own size. " + sizes.HELP,
        ),
        click.Option(
            ["--workers"],
            type=plainclick.IntRange(1, 64),
            default=4,
            show_default=True,
            help="Parallel I/O threads.",
        ),
        _flag("--dry-run", "Show what the copy would do, and write nothing."),
        click.Option(
            ["--output", "-o", "fmt"],
            type=plainclick.Choice([r.value for r in Report]),
            default=Report.TABLE.value,
            show_default=True,
            help="table (one line, the default), json or yaml (sizes in bytes).",
        ),
    ]


def copy_cmd(
    *,
    source: pathlib.Path,
    target: pathlib.Path,
    output: str,
    verify: bool,
    force: bool,
    target_zeroed: bool,
    min_size: str | None,
    workers: int,
    dry_run: bool,
    fmt: str,
) -> None:
    """Copy only the data of an image, keeping the target sparse.

    Raw to raw uses reflink where source and target share a filesystem that
    supports it, else in-kernel copy (copy_file_range), else read/write; qcow2
    in or out goes through qemu-img. The target is flushed before the command
    reports success; a target file appears only when complete.

    Example:

        csi-vm image copy root.qcow2 /dev/vg0/web-root --force --target-zeroed
    """
    from csi_vm.copy import engine  # noqa: PLC0415 - not for `image --help`

    options = model.Options(
        output=model.Format(output),
        overwrite=force,
        target_zeroed=target_zeroed,
        verify=verify,
        min_size=_bytes(min_size, field="--min-size") if min_size else 0,
        workers=workers,
    )
    report = Report(fmt)
    if dry_run:
        _emit(_plan_dict(engine.describe(source, target, options=options)), fmt=report)
        return
    result = _run_with_progress(source, target, options=options)
    if report is Report.TABLE:
        click.echo(summary(result))
    else:
        _emit(_result_dict(result), fmt=report)


app.add_command(
    plainclick.Command(
        "copy",
        callback=copy_cmd,
        params=_copy_params(),
        help=plainclick.help_of(copy_cmd),
    )
)


def _bytes(size: str, *, field: str) -> int:
    # spec builds the config's pydantic models on import: only --min-size needs it.
    from csi_vm import spec  # noqa: PLC0415

    notes: list[str] = []
    try:
        value = spec.parse_size(size, field=field, notes=notes)
    except ValueError as err:
        raise errors.InvalidInput(str(err)) from err
    for note in notes:
        click.echo(f"note: {note}", err=True)
    return value


def summary(result: model.Result) -> str:
    """One line: what moved, how, how fast."""
    speed = f"{sizes.binary(int(result.throughput))}/s"  # of the copy, without verification
    checked = ", verified" if result.verified else ""
    return (
        f"copied {sizes.binary(result.copied)} ({sizes.binary(result.allocated)} allocated of "
        f"{sizes.binary(result.size)}) from {result.source} to {result.target} as "
        f"{result.target_format} by {result.method} in {result.seconds:.2f} s, {speed}{checked}"
    )


def _run_with_progress(
    source: pathlib.Path, target: pathlib.Path, *, options: model.Options
) -> model.Result:
    try:
        return _copy(source, target, options=options)
    except model.Interrupted as err:
        click.echo(f"{err.message}: a target file it was creating has been removed", err=True)
        raise click.exceptions.Exit(signals.INTERRUPTED) from err


def _copy(source: pathlib.Path, target: pathlib.Path, *, options: model.Options) -> model.Result:
    """The copy, with a progress bar on a terminal."""
    if not sys.stderr.isatty():
        # No terminal to draw a bar on: rich's progress bar and its imports,
        # a good part of the command's start-up, would be for nothing.
        return _run(source, target, options=options)
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:8}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        tasks: dict[model.Phase, TaskID] = {}

        def progress(phase: model.Phase, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase.value, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        return _run(source, target, options=dataclasses.replace(options, progress=progress))


def _run(source: pathlib.Path, target: pathlib.Path, *, options: model.Options) -> model.Result:
    from csi_vm.copy import engine  # noqa: PLC0415 - see copy_cmd

    def work(cancel: threading.Event) -> model.Result:
        return engine.copy(source, target, options=dataclasses.replace(options, cancel=cancel))

    result, _ = signals.run_cancellable(work)
    return result


def _plan_dict(plan: engine.Plan) -> dict[str, Any]:
    return {
        "source": {
            "path": str(plan.source.path),
            "kind": plan.source.kind.value,
            "format": plan.source_format.value,
        },
        "target": {
            "path": str(plan.target.path),
            "kind": plan.target.kind.value,
            "format": plan.target_format.value,
            "exists": plan.target.exists,
        },
        "size": plan.size,
        "methods": [m.value for m in plan.methods],
        "zeroing": plan.zeroing,
    }


def _result_dict(result: model.Result) -> dict[str, Any]:
    return {
        "source": str(result.source),
        "target": str(result.target),
        "source_format": result.source_format.value,
        "target_format": result.target_format.value,
        "method": result.method.value,
        "size": result.size,
        "allocated": result.allocated,
        "copied": result.copied,
        "seconds": round(result.seconds, 3),
        "verify_seconds": round(result.verify_seconds, 3),
        "bytes_per_second": int(result.throughput),
        "verified": result.verified,
    }


def _emit(data: dict[str, Any], *, fmt: Report) -> None:
    if fmt is Report.JSON:
        import json  # noqa: PLC0415 - see _run_with_progress

        click.echo(json.dumps(data, indent=2))
    elif fmt is Report.YAML:
        import yaml  # noqa: PLC0415 - see _run_with_progress

        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        src, dst = data["source"], data["target"]
        click.echo(
            f"source:  {src['path']} ({src['kind']}, {src['format']}, {sizes.binary(data['size'])})"
        )
        state = "exists, overwritten" if dst["exists"] else "new"
        click.echo(f"target:  {dst['path']} ({dst['kind']}, {dst['format']}, {state})")
        click.echo(f"method:  {' then '.join(data['methods'])} (first that works)")
        click.echo(f"zeroing: {data['zeroing']}")
