"""Shared plumbing of the VM commands: config, store, progress, output, resume."""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import pathlib
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import click

from csi_vm.cli import paths, tables

if TYPE_CHECKING:
    from rich.console import Console

    from csi_vm.flows import context, plans
    from csi_vm.store import db

# The config (pydantic), the flows, the store, yaml and rich are imported by
# the functions that use them: `--help` of every VM command loads this module.

CONFIG_HELP = (
    "csi-vm config file naming the drivers "
    "(default: $CSI_VM_CONFIG, else the user config dir's config.yaml)."
)
DB_HELP = "metadata store (SQLite; default: $CSI_VM_DB, else the user data dir's csi-vm.db)."


@functools.cache
def _consoles() -> dict[str, Console]:
    from rich.console import Console  # noqa: PLC0415 - see the imports

    # soft_wrap: a message is one line however narrow the terminal or pipe.
    return {
        "console": Console(soft_wrap=True),
        "err_console": Console(stderr=True, soft_wrap=True),
    }


def __getattr__(name: str) -> Console:
    """`console` and `err_console`, made when a command first prints."""
    # The import system asks modules for attributes (__path__) too: only
    # the two names make the consoles.
    if name not in ("console", "err_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _consoles()[name]


class Output(enum.StrEnum):
    """-o/--output: the same names and meanings as kubectl's."""

    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"

    @property
    def tabular(self) -> bool:
        return self in (Output.TABLE, Output.WIDE)

    def layout(self, *, no_headers: bool) -> tables.Layout:
        return tables.Layout(wide=self is Output.WIDE, headers=not no_headers)


OUTPUT_HELP = (
    "table (the default), wide (more columns), json or yaml (sizes in bytes), "
    "or name (KIND/NAME lines, as kubectl prints them)."
)
NO_HEADERS_HELP = "Print tables without the header line (and title)."


def config_path(given: pathlib.Path | None) -> pathlib.Path:
    if given is not None:
        return given
    env = os.environ.get("CSI_VM_CONFIG")
    if env:
        return pathlib.Path(env)
    import platformdirs  # noqa: PLC0415 - see the imports

    return pathlib.Path(platformdirs.user_config_dir("csi-vm")) / "config.yaml"


def db_path(given: pathlib.Path | None) -> pathlib.Path:
    if given is not None:
        return given
    env = os.environ.get("CSI_VM_DB")
    if env:
        return pathlib.Path(env)
    import platformdirs  # noqa: PLC0415 - see the imports

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
    from csi_vm import config  # noqa: PLC0415 - see the imports
    from csi_vm.flows import context, engine  # noqa: PLC0415 - see the imports
    from csi_vm.store import db  # noqa: PLC0415 - see the imports

    cfg = config.load(config_path(cfg_file))
    store = db.Store(db_path(db_file))
    with _progress(quiet) as progress:
        env = context.Env(cfg=cfg, store=store, state_dir=paths.state_dir(), progress=progress)
        try:
            if read_only:
                _warn_pending(engine.waiting(env))
            elif resume:
                got = engine.settle(env, retry_pending=False)
                from rich.markup import escape  # noqa: PLC0415 - see the imports

                for line in got.done:
                    _consoles()["err_console"].print(
                        f"[yellow]resumed:[/] {escape(line)}", soft_wrap=True
                    )
                _warn_pending(got.pending)
            yield env
        finally:
            env.close()


@contextlib.contextmanager
def read_store(cfg_file: pathlib.Path | None, db_file: pathlib.Path | None) -> Iterator[db.Store]:
    """The store of a command that only reads it, checked as `environment(read_only=True)` checks.

    The same config errors and warnings of unfinished flows, without the
    flow machinery: `vm list` and `vm show` start in a fraction of the time.
    """
    from csi_vm import config  # noqa: PLC0415 - see the imports
    from csi_vm.cli import fastpath  # noqa: PLC0415 - see the imports
    from csi_vm.store import db, journal  # noqa: PLC0415 - see the imports

    # Remembered valid: the next `vm show` may answer without reading it (fastpath).
    fastpath.check_config(config_path(cfg_file), config.load)
    store = db.Store(db_path(db_file))
    try:
        # The common case has no unfinished flow: the engine that words
        # them is imported only when there are some.
        if waiting := journal.interrupted(store):
            from csi_vm.flows import engine  # noqa: PLC0415 - see the imports

            _warn_pending([engine.pending_line(flow) for flow in waiting])
        yield store
    finally:
        store.close()


def _warn_pending(lines: list[str]) -> None:
    if not lines:
        return
    from rich.markup import escape  # noqa: PLC0415 - see the imports

    for line in lines:
        _consoles()["err_console"].print(
            f"[yellow]warning:[/] {escape(line)}", highlight=False, soft_wrap=True
        )


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[context.Progress]:
    # quiet first: a quiet command that warns of nothing needs no console (rich).
    if quiet or not _consoles()["err_console"].is_terminal:
        yield lambda what, done, total: None
        return
    err_console = _consoles()["err_console"]
    from rich.progress import (  # noqa: PLC0415 - see the imports
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[str, object] = {}

    def update(what: str, done: int, total: int) -> None:
        # "LABEL | NOTE" keeps one bar per label and shows its latest note
        # (a fan-out's "3/10 clones").
        key = what.partition(" | ")[0]
        task = tasks.get(key)
        if task is None:
            task = tasks[key] = bar.add_task(what, total=total or None)
        bar.update(task, completed=done, total=total or None, description=what)  # type: ignore[arg-type]

    with bar:
        yield update


def show_plan(plan: plans.Plan, *, fmt: Output, dry_run: bool, no_headers: bool = False) -> None:
    if fmt is Output.NAME:
        names([("vm", plan.vm)])
        return
    if not fmt.tabular:
        emit({"dry_run": dry_run, **plan.as_dict()}, fmt=fmt)
        return
    title = f"{'plan' if dry_run else 'done'}: {plan.operation} {plan.vm}" + (
        f" {plan.detail}" if plan.detail else ""
    )
    from rich.text import Text  # noqa: PLC0415 - see the imports

    rows = [
        (
            d.disk,
            d.driver,
            Text(d.strategy, style="green" if d.strategy.startswith("csi") else "yellow"),
            d.reason,
            plan.vm,
            plan.operation,
        )
        for d in plan.disks
    ]
    tables.show(
        _consoles()["console"],
        columns=PLAN_COLUMNS,
        rows=rows,
        layout=fmt.layout(no_headers=no_headers),
        title=title,
    )


PLAN_COLUMNS = (
    tables.Column("disk"),
    tables.Column("driver"),
    tables.Column("strategy"),
    tables.Column("why"),
    tables.Column("vm", wide=True),
    tables.Column("operation", wide=True),
)


def names(objects: list[tuple[str, str]]) -> None:
    """-o name: one KIND/NAME line per object, as `kubectl get -o name` prints."""
    for kind, name in objects:
        click.echo(f"{kind}/{name}")


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """A list whose reader stops reading (`| head`) ends there, quietly and successfully.

    The rest of the list would go nowhere: reading it from the store is
    work for nobody.
    """
    try:
        yield
    except BrokenPipeError:
        # Python flushes stdout again at exit and would report that failure too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def emit_pages(pages: Iterable[list[dict[str, object]]], *, fmt: Output, kind: str = "vm") -> None:
    """What `emit` prints of the list of every page's items, written a page at a time."""
    write = sys.stdout.write
    if fmt is Output.NAME:
        for page in pages:
            write("".join(f"{kind}/{item.get('name') or item.get('vm')}\n" for item in page))
            sys.stdout.flush()
        return
    if fmt is Output.YAML:
        import yaml  # noqa: PLC0415 - see the imports

        # libyaml's emitter, where PyYAML has it, writes what safe_dump writes
        # in a seventh of the time: a fleet's yaml takes seconds, not a minute.
        dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
        empty = True
        for page in pages:
            # A top-level block sequence is its items' sequences one after another.
            write(yaml.dump(page, Dumper=dumper, sort_keys=False) if page else "")
            sys.stdout.flush()
            empty = empty and not page
        write("[]\n" if empty else "")
        return
    sep = "[\n"  # json.dumps(list, indent=2) is "[\n", its items joined by ",\n", "\n]"
    for page in pages:
        if page:
            # A page's list less its brackets: its items as the whole list has
            # them, in a third of the time of dumping and indenting each item.
            write(sep + json.dumps(page, indent=2, default=str)[2:-2])
            sep = ",\n"
            sys.stdout.flush()
    write("[]\n" if sep == "[\n" else "\n]\n")


def emit(data: object, *, fmt: Output, kind: str = "vm") -> None:
    """json, yaml or name of `data`; a table is the caller's to print."""
    if fmt is Output.NAME and isinstance(data, dict):
        names([(kind, str(data.get("name") or data.get("vm")))])
    elif fmt is Output.NAME and isinstance(data, list):
        names([(kind, str(item.get("name") or item.get("vm"))) for item in data])
    elif fmt is Output.YAML:
        import yaml  # noqa: PLC0415 - see the imports

        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    else:
        click.echo(json.dumps(data, indent=2, default=str))
