"""`csi-vm clone` (one clone, or a fan-out of many) and `csi-vm resume`."""

from __future__ import annotations

import pathlib
import threading
from typing import TYPE_CHECKING

import typer

from csi_vm import errors, sizes
from csi_vm.cli import signals, vmenv
from csi_vm.cli.vm_cmd import CFG, DB, DRY, FMT, NO_HEADERS
from csi_vm.cli.vmenv import Output

if TYPE_CHECKING:
    from csi_vm.flows import context, engine
    from csi_vm.flows.fanout_plan import FanoutPlan
    from csi_vm.store import journal

# The config, the flows and the store are imported by the commands that use
# them: `--help` loads this module and needs none of them.


def clone(
    source: str = typer.Argument(..., help="The VM to clone (it is only read)."),
    target: str | None = typer.Argument(None, help="Name of the new VM (not with --count)."),
    count: int | None = typer.Option(
        None, "--count", help="Make this many clones (a fan-out); needs --name-template."
    ),
    template: str | None = typer.Option(
        None,
        "--name-template",
        help="Names of a fan-out's clones: {i} is 1..N, {i:03} pads it (lab-{i:03}: lab-001).",
    ),
    parallel: int = typer.Option(
        4, "--parallel", help="A fan-out makes at most this many clones at once."
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Compare every block with the source (default: a sample): each CSI-cloned "
        "disk, or every clone of a fan-out.",
    ),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Clone a VM: CSI clone, else snapshot + restore, else a host copy, per disk.

    A running VM is cloned from an online snapshot, taken and removed on the way.
    With --count N --name-template, N clones of a stopped VM: native clones,
    else N restores of one snapshot, else host copies that read the clones
    already made as well (a tree), --parallel at a time. Clones made are kept
    when it is interrupted: `csi-vm resume` makes the rest, --rollback deletes them.

    Examples:

        csi-vm clone web-1 web-2 --dry-run

        csi-vm clone golden --count 20 --name-template lab-{i} --parallel 8
    """
    if count is not None or template is not None:
        _fanout(
            source, target, count=count, template=template, parallel=parallel, verify=verify,
            dry_run=dry_run, fmt=fmt, no_headers=no_headers, files=(cfg, db),
        )  # fmt: skip
        return
    if target is None:
        raise errors.InvalidInput(
            "clone needs the new VM's name, or --count N --name-template TEMPLATE",
            hint="e.g. csi-vm clone web-1 web-2",
        )
    _one(
        source,
        target,
        verify=verify,
        dry_run=dry_run,
        fmt=fmt,
        no_headers=no_headers,
        files=(cfg, db),
    )


Files = tuple[pathlib.Path | None, pathlib.Path | None]


def _one(
    source: str, target: str, *, verify: bool, dry_run: bool, fmt: Output, no_headers: bool,
    files: Files,
) -> None:  # fmt: skip
    from csi_vm import config  # noqa: PLC0415 - see the imports
    from csi_vm.flows import online, vms  # noqa: PLC0415 - see the imports
    from csi_vm.store import records, running  # noqa: PLC0415 - see the imports

    config.require_name(target, what="VM name")
    with vmenv.environment(*files) as env:
        if running.find(env.store, source) is not None:
            plan = online.plan_snapshot(env, records.get_vm(env.store, source))
            if not dry_run:
                plan = online.clone(env, source=source, target=target)
        elif dry_run:
            plan = vms.plan_clone(env, source=source, target=target)
        else:
            plan = vms.clone(env, source=source, target=target, verify=verify)
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run, no_headers=no_headers)


def _fanout(
    source: str, target: str | None, *, count: int | None, template: str | None, parallel: int,
    verify: bool, dry_run: bool, fmt: Output, no_headers: bool, files: Files,
) -> None:  # fmt: skip
    from csi_vm.flows import fanout  # noqa: PLC0415 - see the imports

    if target is not None:
        raise errors.InvalidInput(
            f"give either the new VM's name ({target!r}) or --count and --name-template, not both"
        )
    if count is None or template is None:
        given, missing = (
            ("--count", "--name-template") if template is None else ("--name-template", "--count")
        )
        raise errors.InvalidInput(
            f"{given} needs {missing}", hint="e.g. --count 10 --name-template lab-{i}"
        )
    with vmenv.environment(*files) as env:
        if dry_run:
            plan = fanout.dry_run(
                env, source=source, template=template, count=count, parallel=parallel
            )
        else:
            plan = _run_fanout(env, source=source, template=template, count=count,
                               parallel=parallel, full=verify)  # fmt: skip
    show_fanout(plan, fmt=fmt, dry_run=dry_run, no_headers=no_headers)


def _run_fanout(
    env: context.Env, *, source: str, template: str, count: int, parallel: int, full: bool
) -> FanoutPlan:
    """The fan-out in a worker thread: SIGINT and SIGTERM stop it between clones."""
    from csi_vm.flows import fanout  # noqa: PLC0415 - see the imports

    def work(cancel: threading.Event) -> FanoutPlan:
        return fanout.run(
            env, source=source, template=template, count=count, parallel=parallel, full=full,
            cancel=cancel,
        )  # fmt: skip

    plan, _ = signals.run_cancellable(work)
    return plan


def show_fanout(plan: FanoutPlan, *, fmt: Output, dry_run: bool, no_headers: bool) -> None:
    if fmt is Output.NAME:
        vmenv.names([("vm", n) for n in (plan.names if dry_run else plan.made)])
        return
    data = plan.as_dict(dry_run=dry_run)
    if not fmt.tabular:
        vmenv.emit(data, fmt=fmt)
        return
    out = vmenv.console
    verb = "would make" if dry_run else "made"
    names = plan.names if dry_run else plan.made
    out.print(
        f"{verb} {len(names)} clones of {plan.source} ({_span(names)}) by {plan.strategy}, "
        f"{plan.parallel} at a time{' in a tree of host copies' if plan.tree else ''}",
        markup=False,
    )
    est = plan.estimate
    when = "unknown" if est.seconds is None else f"{est.seconds:.3g} s"
    out.print(
        f"expected: {sizes.binary(est.bytes_per_clone * len(plan.names))} written, "
        f"{when} ({est.basis})",
        markup=False,
    )
    if not dry_run and plan.seconds:
        rate = plan.bytes_written / plan.seconds
        out.print(
            f"took {plan.seconds:.1f} s ({plan.seconds / max(len(plan.made), 1):.2f} s a clone), "
            f"wrote {sizes.binary(plan.bytes_written)} ({sizes.binary(int(rate))}/s)",
            markup=False,
        )
    for d in plan.disks:
        out.print(f"  disk {d.disk} on {d.driver}: {d.strategy}: {d.reason}", markup=False)


def _span(names: tuple[str, ...]) -> str:
    if not names:
        return "none"
    return names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"


def resume(
    rollback: bool = typer.Option(
        False,
        "--rollback",
        help="Roll back interrupted fan-outs (delete the clones they made) instead of "
        "making the rest.",
    ),
    fmt: Output = typer.Option(
        Output.TABLE,
        "--output",
        "-o",
        help="table (lines, the default), json or yaml of what was handled and the last "
        "flows, or name (flow/ID of the last flows).",
    ),
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Finish or roll back interrupted operations (commands that change things do this first).

    An interrupted fan-out (`clone --count`) is finished: the clones it did
    not make are made; with --rollback the clones it made are deleted.

    Example:

        csi-vm resume
    """
    from csi_vm.flows import engine  # noqa: PLC0415 - see the imports
    from csi_vm.store import journal  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db, quiet=True, resume=False) as env:
        got = engine.settle(env, retry_pending=True)
        if got.failed is None:
            _held(env, got, rollback=rollback)
        recent = journal.recent(env.store, limit=5)
    if fmt in (Output.JSON, Output.YAML):
        flows = [
            {"kind": f.kind, "id": f.id, "vm": f.vm, "state": f.state, "error": f.error}
            for f in recent
        ]
        vmenv.emit({"handled": list(got.done), "recent": flows}, fmt=fmt)
    elif fmt is Output.NAME:
        vmenv.names([("flow", f.id) for f in recent])
    else:
        _say_resumed(got.done, recent)
    if got.failed is not None:
        # Still pending (its driver does not answer): the exit code says so.
        raise got.failed


def _held(env: context.Env, got: engine.Resumed, *, rollback: bool) -> None:
    """Finish, or roll back, the fan-outs `settle` left to the user."""
    from csi_vm.flows import fanout  # noqa: PLC0415 - see the imports

    for row in got.held:
        if rollback:
            got.done.append(fanout.rollback(env, row))
            continue

        def work(cancel: threading.Event, row: journal.FlowRow = row) -> str:
            return fanout.finish(env, row, cancel=cancel)

        got.done.append(signals.run_cancellable(work)[0])


def _say_resumed(done: list[str], recent: list[journal.FlowRow]) -> None:
    count = len(done)
    vmenv.console.print(f"{count} interrupted operation{'' if count == 1 else 's'} handled")
    for line in done:
        vmenv.console.print(f"  {line}")
    for flow in recent:
        vmenv.console.print(f"  {flow.kind} {flow.id} of {flow.vm}: {flow.state} {flow.error}")
