"""Many clones of one stopped VM: `csi-vm clone SOURCE --count N --name-template lab-{i}`.

A fan-out is one journaled flow (kind "fanout", holding the source's lock).
Its steps attach the source's disks on this node (every clone is compared
with them), measure their data where host copies will write it, take one CSI
snapshot per disk where clones are restored from one, then make the clones,
up to `parallel` at a time, one `fanout_clone` step each (fanout_member).
Each clone is a flow of its own, committed as soon as it is made. The
fan-out commits last; its tidy-up removes the snapshots and detaches the
source.

A fan-out that stops early (a signal, a clone that failed, a crash) keeps the
clones it made and waits for the user: other commands only warn of it;
`csi-vm resume` makes the rest, `csi-vm resume --rollback` deletes them.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from csi_vm import errors
from csi_vm.flows import (
    context,
    effects,
    engine,
    fanout_plan,
    fanout_tree,
    plans,
    volume_actions,
    volume_steps,
)
from csi_vm.flows.fanout_plan import FanoutPlan, check, estimate, record_rate
from csi_vm.store import journal, records

KIND = "fanout"

Data = dict[str, Any]


class Interrupted(errors.CsiVmError):
    """A signal stopped the fan-out; the clones made are kept."""

    exit_code = 130


def dry_run(
    env: context.Env, *, source: str, template: str, count: int, parallel: int
) -> FanoutPlan:
    """Every check of a fan-out and its estimate; leaves nothing changed."""
    plan = check(env, source=source, template=template, count=count, parallel=parallel)
    if not plan.tree:
        return dataclasses.replace(plan, estimate=estimate(env, plan, data_bytes=0, read_rate=0))
    # Measuring reads the source attached here: a flow of its own, so a crash detaches it.
    vm = records.get_vm(env.store, source)
    with engine.Flow(env, kind="fanout-measure", vm=source, args={}) as flow:
        atts = _attach(flow, vm)
        est = _measure(flow, plan, vm, atts)
        flow.commit(lambda cur: None, after=[_detach(a) for a in atts.values()])
    return dataclasses.replace(plan, estimate=est)


def run(
    env: context.Env,
    *,
    source: str,
    template: str,
    count: int,
    parallel: int,
    full: bool,
    cancel: threading.Event,
) -> FanoutPlan:
    """Make the clones; `Interrupted` when `cancel` is set before all are made."""
    plan = check(env, source=source, template=template, count=count, parallel=parallel)
    started = time.monotonic()
    vm = records.get_vm(env.store, source)
    args = {
        "template": template, "count": count, "parallel": parallel, "full": full,
        "disks": [dataclasses.asdict(d) for d in plan.disks],
    }  # fmt: skip
    flow = engine.Flow(env, kind=KIND, vm=source, args=args)
    with flow:  # a failure before the first clone rolls everything back
        atts = _attach(flow, vm)
        plan = dataclasses.replace(plan, estimate=_measure(flow, plan, vm, atts))
        for d in vm.disks:
            if plan.strategy_of(d.name) == "snapshot-restore":
                what = f"fanout-{d.name}"
                volume_steps.snapshot(flow, what=what, driver=d.driver, volume_id=d.volume_id)
        flow.hold()  # from here on, the clones made are kept whatever happens
    return _make_all(env, flow, plan, cancel=cancel, started=started)


def finish(env: context.Env, row: journal.FlowRow, *, cancel: threading.Event) -> str:
    """Make the clones an interrupted fan-out did not make (`csi-vm resume`)."""
    journal.adopt(env.store, row.id)
    args = row.args
    if not any(s.action == "fanout_clone" for s in journal.steps(env.store, row.id)):
        # Stopped before its first clone: nothing to keep, start it afresh.
        _roll_back(env, row, why="begun afresh by `csi-vm resume`")
        plan = run(
            env, source=row.vm, template=args["template"], count=args["count"],
            parallel=args["parallel"], full=args["full"], cancel=cancel,
        )  # fmt: skip
    else:
        flow = engine.Flow(env, kind=KIND, vm=row.vm, args=args)
        flow.id = row.id
        plan = _make_all(env, flow, _resumed_plan(row), cancel=cancel, started=time.monotonic())
    return f"finished fan-out {row.id} of VM {row.vm}: {len(plan.made)} clones"


def rollback(env: context.Env, row: journal.FlowRow) -> str:
    """Delete the clones an interrupted fan-out made (`csi-vm resume --rollback`)."""
    journal.adopt(env.store, row.id)
    made = _state(env, row.id).made
    _roll_back(env, row, why="rolled back by `csi-vm resume --rollback`")
    return f"rolled back fan-out {row.id} of VM {row.vm}: deleted the {len(made)} clones it made"


def _roll_back(env: context.Env, row: journal.FlowRow, *, why: str) -> None:
    engine.rollback(env, row.id)
    journal.end(env.store, flow_id=row.id, state=journal.ROLLED_BACK, error=why)


def _resumed_plan(row: journal.FlowRow) -> FanoutPlan:
    """The plan the fan-out began with: its clones are made the way the first ones were."""
    args = row.args
    return FanoutPlan(
        source=row.vm,
        template=args["template"],
        names=fanout_plan.names(args["template"], args["count"]),
        parallel=args["parallel"],
        disks=tuple(plans.DiskPlan(**d) for d in args["disks"]),
    )


def _attach(flow: engine.Flow, vm: records.VM) -> dict[str, volume_steps.Attached]:
    return {d.name: volume_steps.attach(flow, _vol(d)) for d in vm.disks}


def _measure(
    flow: engine.Flow, plan: FanoutPlan, vm: records.VM, atts: dict[str, volume_steps.Attached]
) -> Any:
    """The estimate, from the data a host copy of each such disk would write."""
    data = rate = 0.0
    for d in vm.disks:
        if plan.strategy_of(d.name) == "host-copy":
            seen = flow.run("data_bytes", {"path": atts[d.name].path, "size": d.size})
            data += seen["data_bytes"]
            rate = seen["read_rate"] if not rate else min(rate, seen["read_rate"])
    return estimate(flow.env, plan, data_bytes=int(data), read_rate=rate)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _State:
    """What a fan-out's journal says it has: the source's paths, snapshots, clones made."""

    paths: dict[str, str]
    snapshots: dict[str, str]
    made: dict[str, int]  # clone -> bytes its copies wrote
    tidy: list[tuple[str, Data]]  # the commit's after-steps


def _state(env: context.Env, flow_id: str) -> _State:
    paths: dict[str, str] = {}
    snapshots: dict[str, str] = {}
    made: dict[str, int] = {}
    tidy: list[tuple[str, Data]] = []
    for step in journal.steps(env.store, flow_id):
        d = step.data
        if step.action == "attach" and step.done:
            paths[d["volume_id"]] = volume_actions.disk_path(d["target"], d["mode"])
            tidy.append(("detach", {k: d[k] for k in ("driver", "volume_id", "base", "node")}))
        elif step.action == "create_snapshot" and step.done:
            snapshots[d["source_volume_id"]] = d["snapshot_id"]
            tidy.insert(
                0, ("delete_snapshot", {"driver": d["driver"], "snapshot_id": d["snapshot_id"]})
            )
        elif step.action == "fanout_clone" and step.done:
            made[d["target"]] = int(d.get("bytes", 0))
    return _State(paths=paths, snapshots=snapshots, made=made, tidy=tidy)


def _make_all(
    env: context.Env,
    flow: engine.Flow,
    plan: FanoutPlan,
    *,
    cancel: threading.Event,
    started: float,
) -> FanoutPlan:
    vm = records.get_vm(env.store, plan.source)
    state = _state(env, flow.id)
    by_volume = {d.volume_id: d.name for d in vm.disks}
    base: Data = {
        "fanout": flow.id,
        "origin": plan.source,
        "strategies": {d.disk: d.strategy for d in plan.disks},
        "snapshots": {by_volume[v]: s for v, s in state.snapshots.items()},
        "paths": {by_volume[v]: p for v, p in state.paths.items()},
        "full": bool(flow.args.get("full")),
    }
    # A clone deleted since (by hand, or by a rollback that stopped half way) is made again.
    made = {n: b for n, b in state.made.items() if records.find_vm(env.store, n) is not None}
    todo = [(i, n) for i, n in enumerate(plan.names, 1) if n not in made]
    sched = fanout_tree.Scheduler(
        origin=plan.source, todo=todo, made=list(made), parallel=plan.parallel, tree=plan.tree
    )
    try:
        failure = _run_jobs(env, flow, sched, base, made, plan=plan, cancel=cancel)
    finally:
        for path in state.paths.values():
            effects.SOURCES.forget(path)
    done = dataclasses.replace(
        plan,
        made=tuple(n for n in plan.names if n in made),
        seconds=time.monotonic() - started,
        bytes_written=sum(made.values()),
    )
    if failure is not None or sched.left:
        err = _stopped(flow, done, failure)
        journal.mark_pending(env.store, flow_id=flow.id, error=str(err.args[0])[:300])
        raise err
    flow.commit(lambda cur: None, after=state.tidy)
    record_rate(env, done)
    return done


def _run_jobs(
    env: context.Env,
    flow: engine.Flow,
    sched: fanout_tree.Scheduler,
    base: Data,
    made: dict[str, int],
    *,
    plan: FanoutPlan,
    cancel: threading.Event,
) -> BaseException | None:
    """Run the clones, `parallel` at a time; the first failure stops new ones."""
    failure: BaseException | None = None
    show = _progress(env, plan, made)
    with concurrent.futures.ThreadPoolExecutor(max_workers=plan.parallel) as pool:
        running: dict[concurrent.futures.Future[Data], fanout_tree.Job] = {}
        while True:
            while failure is None and not cancel.is_set() and (job := sched.next()):
                data = {**base, "index": job.index, "target": job.target, "source": job.source}
                running[pool.submit(flow.run, "fanout_clone", data)] = job
            if not running:
                return failure
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                job = running.pop(future)
                err = future.exception()
                if err is None:
                    made[job.target] = int(future.result().get("bytes", 0))
                    show()
                failure = failure or err
                sched.finished(job, made=err is None)


def _progress(env: context.Env, plan: FanoutPlan, made: dict[str, int]) -> Callable[[], None]:
    """Clones made, and bytes: those host copies wrote, else the disks' size (native clones)."""
    count = len(plan.names)
    per_clone = sum(records.get_vm(env.store, plan.source).disk(d.disk).size for d in plan.disks)
    label = f"fan-out of {plan.source}"

    def show() -> None:
        note = f"{label} | {len(made)}/{count} clones"
        if plan.tree:
            total = plan.estimate.bytes_per_clone * count
            env.progress(note, sum(made.values()), max(total, sum(made.values())))
        else:
            env.progress(note, len(made) * per_clone, count * per_clone)

    show()
    return show


def _stopped(flow: engine.Flow, plan: FanoutPlan, failure: BaseException | None) -> BaseException:
    """The error of a fan-out that stopped early: what was kept, and what to run next."""
    kept = f"{len(plan.made)} of {len(plan.names)} clones made and kept"
    hint = (
        f"fan-out {flow.id} waits: `csi-vm resume` makes the rest, "
        "`csi-vm resume --rollback` deletes the clones it made"
    )
    if failure is None:
        return Interrupted(f"interrupted: {kept}", hint=hint)
    if isinstance(failure, errors.CsiVmError) and not isinstance(failure, engine.Pending):
        return type(failure)(f"{failure.message}; {kept}", hint=hint)
    return failure


def _vol(d: records.Disk) -> volume_steps.Vol:
    return volume_steps.Vol(driver=d.driver, volume_id=d.volume_id, mode=d.mode, size=d.size)


def _detach(att: volume_steps.Attached) -> tuple[str, Data]:
    return (
        "detach",
        {"driver": att.vol.driver, "volume_id": att.vol.volume_id, "base": att.base, "node": ""},
    )
