"""Shared plumbing of the VM commands: config, store, progress, output, resume."""

from __future__ import annotations

import contextlib
import enum
import json
import os
import pathlib
from collections.abc import Iterator

import platformdirs
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from csi_vm import config
from csi_vm.cli import paths
from csi_vm.flows import context, engine, plans
from csi_vm.store import db

CONFIG_HELP = (
    "csi-vm config file naming the drivers "
    "(default: $CSI_VM_CONFIG, else the user config dir's config.yaml)."
)
DB_HELP = "metadata store (SQLite; default: $CSI_VM_DB, else the user data dir's csi-vm.db)."

console = Console()
err_console = Console(stderr=True)


class Output(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def config_path(given: pathlib.Path | None) -> pathlib.Path:
    if given is not None:
        return given
    env = os.environ.get("CSI_VM_CONFIG")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(platformdirs.user_config_dir("csi-vm")) / "config.yaml"


def db_path(given: pathlib.Path | None) -> pathlib.Path:
    if given is not None:
        return given
    env = os.environ.get("CSI_VM_DB")
    if env:
        return pathlib.Path(env)
    return pathlib.Path(platformdirs.user_data_dir("csi-vm")) / "csi-vm.db"


@contextlib.contextmanager
def environment(
    cfg_file: pathlib.Path | None,
    db_file: pathlib.Path | None,
    *,
    quiet: bool = False,
    resume: bool = True,
    read_only: bool = False,
) -> Iterator[context.Env]:
    """An Env with interrupted flows already finished or rolled back.

    A `read_only` command only warns about unfinished flows: what it reads
    must not wait on a driver that an unrelated flow needs.
    """
    cfg = config.load(config_path(cfg_file))
    store = db.Store(db_path(db_file))
    with _progress(quiet) as progress:
        env = context.Env(cfg=cfg, store=store, state_dir=paths.state_dir(), progress=progress)
        try:
            if read_only:
                _warn_pending(engine.waiting(env))
            elif resume:
                got = engine.settle(env, retry_pending=False)
                for line in got.done:
                    err_console.print(f"[yellow]resumed:[/] {escape(line)}", soft_wrap=True)
                _warn_pending(got.pending)
            yield env
        finally:
            env.close()


def _warn_pending(lines: list[str]) -> None:
    for line in lines:
        err_console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[context.Progress]:
    if quiet or not err_console.is_terminal:
        yield lambda what, done, total: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, object] = {}

    def update(what: str, done: int, total: int) -> None:
        task = tasks.get(what)
        if task is None:
            task = tasks[what] = bar.add_task(what, total=total or None)
        bar.update(task, completed=done, total=total or None)  # type: ignore[arg-type]

    with bar:
        yield update


def show_plan(plan: plans.Plan, *, fmt: Output, dry_run: bool) -> None:
    if fmt is not Output.TABLE:
        emit({"dry_run": dry_run, **plan.as_dict()}, fmt=fmt)
        return
    title = f"{'plan' if dry_run else 'done'}: {plan.operation} {plan.vm}" + (
        f" {plan.detail}" if plan.detail else ""
    )
    table = Table(title=title, title_justify="left")
    for column in ("disk", "driver", "strategy", "why"):
        table.add_column(column, overflow="fold")
    for d in plan.disks:
        style = "green" if d.strategy.startswith("csi") else "yellow"
        table.add_row(d.disk, d.driver, f"[{style}]{d.strategy}[/]", d.reason)
    console.print(table)


def emit(data: object, *, fmt: Output) -> None:
    if fmt is Output.YAML:
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        typer.echo(json.dumps(data, indent=2, default=str))
