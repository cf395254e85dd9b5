"""`csi-vm image ...`: the copy engine on its own, for image files and block devices."""

from __future__ import annotations

import dataclasses
import enum
import json
import pathlib
import sys
import threading
from typing import Any

import typer

from csi_vm import errors, sizes
from csi_vm.cli import signals
from csi_vm.copy import engine, model

app = typer.Typer(
    help="Copy and convert disk images (raw, qcow2) between files and block devices.",
    no_args_is_help=True,
)


class Report(enum.StrEnum):
    """-o/--output of a copy: one line for people, the figures for scripts."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


@app.command("copy")
def copy_cmd(
    source: pathlib.Path = typer.Argument(
        ..., help="Image to read: a raw or qcow2 file, or a block device."
    ),
    target: pathlib.Path = typer.Argument(
        ..., help="Where to write: a new file, or (with --force) a file or block device."
    ),
    output: model.Format = typer.Option(
        model.Format.RAW, "--format", help="Format of the target: raw or qcow2."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Compare checksums of source and target after the copy."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace an existing target file, or write over a block device."
    ),
    target_zeroed: bool = typer.Option(
        False,
        "--target-zeroed",
        help="The target device reads as zeros (a fresh volume): skip zeroing its free ranges.",
    ),
    min_size: str | None = typer.Option(
        None,
        "--min-size",
        help="Make a target file at least this large: a copy into a larger disk, "
        "whose part past the image reads as zeros. A device keeps its own size. " + sizes.HELP,
    ),
    workers: int = typer.Option(4, "--workers", min=1, max=64, help="Parallel I/O threads."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what the copy would do, and write nothing."
    ),
    fmt: Report = typer.Option(
        Report.TABLE,
        "--output",
        "-o",
        help="table (one line, the default), json or yaml (sizes in bytes).",
    ),
) -> None:
    """Copy only the data of an image, keeping the target sparse.

    Raw to raw uses reflink where source and target share a filesystem that
    supports it, else in-kernel copy (copy_file_range), else read/write; qcow2
    in or out goes through qemu-img. The target is flushed before the command
    reports success; a target file appears only when complete.

    Example:

        csi-vm image copy root.qcow2 /dev/vg0/web-root --force --target-zeroed
    """
    options = model.Options(
        output=output,
        overwrite=force,
        target_zeroed=target_zeroed,
        verify=verify,
        min_size=_bytes(min_size, field="--min-size") if min_size else 0,
        workers=workers,
    )
    if dry_run:
        _emit(_plan_dict(engine.describe(source, target, options=options)), fmt=fmt)
        return
    result = _run_with_progress(source, target, options=options)
    if fmt is Report.TABLE:
        typer.echo(summary(result))
    else:
        _emit(_result_dict(result), fmt=fmt)


def _bytes(size: str, *, field: str) -> int:
    # spec builds the config's pydantic models on import: only --min-size needs it.
    from csi_vm import spec  # noqa: PLC0415

    notes: list[str] = []
    try:
        value = spec.parse_size(size, field=field, notes=notes)
    except ValueError as err:
        raise errors.InvalidInput(str(err)) from err
    for note in notes:
        typer.echo(f"note: {note}", err=True)
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
        typer.echo(f"{err.message}: a target file it was creating has been removed", err=True)
        raise typer.Exit(signals.INTERRUPTED) from err


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
        typer.echo(json.dumps(data, indent=2))
    elif fmt is Report.YAML:
        import yaml  # noqa: PLC0415 - see _run_with_progress

        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        src, dst = data["source"], data["target"]
        typer.echo(
            f"source:  {src['path']} ({src['kind']}, {src['format']}, {sizes.binary(data['size'])})"
        )
        state = "exists, overwritten" if dst["exists"] else "new"
        typer.echo(f"target:  {dst['path']} ({dst['kind']}, {dst['format']}, {state})")
        typer.echo(f"method:  {' then '.join(data['methods'])} (first that works)")
        typer.echo(f"zeroing: {data['zeroing']}")
