"""A fan-out before anything changes: its names, its checks, its strategy and its estimate.

`csi-vm clone SOURCE --count N --name-template lab-{i}` runs `check` first,
with or without --dry-run, so a dry run refuses what the real command would.
"""

from __future__ import annotations

import dataclasses
import json

from csi_vm import errors, nametemplate, sizes
from csi_vm.flows import clone_restore, context, plans
from csi_vm.store import records, running

#: cheapest first: what one disk's strategy costs a fan-out
_COST = ("csi-clone", "snapshot-restore", "host-copy")
#: measured rates of earlier fan-outs, per driver and strategy, in the state dir
RATES_FILE = "fanout-rates.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Estimate:
    bytes_per_clone: int  # data a host copy writes per clone; 0 for native clones
    seconds: float | None
    basis: str  # what the time is worked out from


@dataclasses.dataclass(frozen=True, kw_only=True)
class FanoutPlan:
    source: str
    template: str
    names: tuple[str, ...]
    parallel: int
    disks: tuple[plans.DiskPlan, ...]
    estimate: Estimate = Estimate(bytes_per_clone=0, seconds=None, basis="")
    made: tuple[str, ...] = ()
    seconds: float | None = None  # the fan-out's wall time, once run
    bytes_written: int = 0

    @property
    def strategy(self) -> str:
        """The costliest disk's strategy: what the fan-out as a whole comes down to."""
        return max((d.strategy for d in self.disks), key=_COST.index, default="csi-clone")

    def strategy_of(self, disk: str) -> str:
        return next(d.strategy for d in self.disks if d.disk == disk)

    @property
    def tree(self) -> bool:
        return any(d.strategy == "host-copy" for d in self.disks)

    def as_dict(self, *, dry_run: bool) -> dict[str, object]:
        est = self.estimate
        return {
            "dry_run": dry_run,
            "operation": "fanout",
            "vm": self.source,
            "strategy": self.strategy,
            "count": len(self.names),
            "parallel": self.parallel,
            "names": list(self.names),
            "bytes_per_clone": est.bytes_per_clone,
            "expected_bytes": est.bytes_per_clone * len(self.names),
            "expected_seconds": est.seconds,
            "estimate_basis": est.basis,
            "disks": [dataclasses.asdict(d) for d in self.disks],
            "made": list(self.made),
            "seconds": self.seconds,
            "bytes_written": self.bytes_written,
        }


def names(template: str, count: int) -> tuple[str, ...]:
    """The N names a template gives, each a valid VM name; InvalidInput (exit 2) otherwise."""
    if count < 1:
        raise errors.InvalidInput(f"--count {count}: a fan-out makes at least 1 clone")
    try:
        return nametemplate.names(template, count)
    except nametemplate.NoField as err:
        raise errors.InvalidInput(
            f"--name-template {template!r} has no {{i}}: every clone needs a name of its own",
            hint="e.g. --name-template lab-{i} names them lab-1, lab-2, ...",
        ) from err
    except nametemplate.StrayBraces as err:
        raise errors.InvalidInput(
            f"--name-template {template!r}: only {{i}} or {{i:0N}} may stand in braces",
            hint="e.g. lab-{i} or lab-{i:03}",
        ) from err
    except nametemplate.NotAName as err:
        raise errors.InvalidInput(
            f"--name-template {template!r} gives {err.name!r}, not a VM name: {err.reason}"
        ) from err


def check(env: context.Env, *, source: str, template: str, count: int, parallel: int) -> FanoutPlan:
    """Every check of a fan-out, and its plan without the estimate; changes nothing."""
    targets = names(template, count)
    if parallel < 1:
        raise errors.InvalidInput(f"--parallel {parallel}: at least 1 clone must be made at once")
    vm = records.get_vm(env.store, source)
    running.require_stopped(env.store, source, what="a fan-out")
    _check_free(env, targets, source=source, template=template)
    return FanoutPlan(
        source=source,
        template=template,
        names=targets,
        parallel=parallel,
        disks=tuple(clone_restore.clone_plan(env, d) for d in vm.disks),
    )


def _check_free(env: context.Env, targets: tuple[str, ...], *, source: str, template: str) -> None:
    taken = [n for n in targets if n == source or records.find_vm(env.store, n) is not None]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise errors.AlreadyExists(
            f"--name-template {template!r} gives {taken[0]!r}{more}, and a VM of that name exists",
            hint="choose another template, or delete those VMs first",
        )


def estimate(env: context.Env, plan: FanoutPlan, *, data_bytes: int, read_rate: float) -> Estimate:
    """Time and bytes of a fan-out, from a measured rate; `data_bytes` per clone.

    Host copies: the data to write over the write rate of the last host-copy
    fan-out on the driver, else over the rate the source was just read at.
    Native clones: the time per clone of the last such fan-out, if any.
    """
    count = len(plan.names)
    driver = plan.disks[0].driver if plan.disks else ""
    known = _rates(env).get(f"{driver}/{plan.strategy}", {})
    if plan.tree:
        total = data_bytes * count
        rate, basis = (
            known.get("bytes_per_second", 0.0),
            (f"the write rate of the last host-copy fan-out on driver {driver!r}"),
        )
        if not rate:
            rate, basis = (
                read_rate,
                (
                    "the rate the source was read at just now (writes are often slower: "
                    "take it as a lower bound)"
                ),
            )
        if not rate:
            return Estimate(bytes_per_clone=data_bytes, seconds=None, basis="no rate measured")
        what = f"{sizes.binary(total)} to write at {sizes.binary(int(rate))}/s, {basis}"
        return Estimate(bytes_per_clone=data_bytes, seconds=total / rate, basis=what)
    per = known.get("seconds_per_clone")
    if per is None:
        why = f"no fan-out by {plan.strategy} on driver {driver!r} has been timed yet"
        return Estimate(bytes_per_clone=0, seconds=None, basis=f"no estimate: {why}")
    basis = (
        f"{count} x {per:.3f} s, the time per clone of the last {plan.strategy} "
        f"fan-out on driver {driver!r}, {known.get('parallel', 1):.0f} at a time"
    )
    return Estimate(bytes_per_clone=0, seconds=count * per, basis=basis)


def record_rate(env: context.Env, plan: FanoutPlan) -> None:
    """Keep what this fan-out measured, for the next one's estimate."""
    if not plan.made or not plan.seconds or not plan.disks:
        return
    found = _rates(env)
    key = f"{plan.disks[0].driver}/{plan.strategy}"
    found[key] = {"seconds_per_clone": plan.seconds / len(plan.made), "parallel": plan.parallel}
    if plan.bytes_written:
        found[key]["bytes_per_second"] = plan.bytes_written / plan.seconds
    path = env.state_dir / RATES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(found, indent=1))
    tmp.replace(path)


def _rates(env: context.Env) -> dict[str, dict[str, float]]:
    try:
        found = json.loads((env.state_dir / RATES_FILE).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: an estimate is not worth failing for
    return found if isinstance(found, dict) else {}
