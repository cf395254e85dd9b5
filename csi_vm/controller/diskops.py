"""Per-disk work shared by snapshot, restore and clone: choose, create, and sum up.

Each disk of a VM may sit on its own StorageClass, so each disk gets its own
strategy from its own report; the resource's status lists them per disk and
names the fallback reason of every disk that did not go native.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from capabilities import model
from csi_vm.controller import context, storage, strategy
from csi_vm.crd import models as crd
from csi_vm.crd import status
from csi_vm.kube import objects

Json = objects.Json
Progress = storage.Progress


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiskResult:
    disk: str
    choice: model.Choice
    #: what holds the result: a PersistentVolumeClaim or a VolumeSnapshot
    kind: str
    name: str
    size: str
    storage_class: str
    #: of the disk's claim, and so of every claim made from this result
    mode: crd.VolumeMode
    progress: Progress
    message: str = ""

    def as_status(self, operation: str) -> Json:
        return {
            "name": self.disk,
            "kind": self.kind,
            "objectName": self.name,
            "size": self.size,
            "storageClassName": self.storage_class,
            "volumeMode": self.mode.value,
            "phase": self.progress.value,
            **status.strategy_fields(operation, self.choice),
        }


def overall(results: list[DiskResult]) -> Progress:
    if any(r.progress is Progress.FAILED for r in results):
        return Progress.FAILED
    if all(r.progress is Progress.READY for r in results):
        return Progress.READY
    return Progress.PENDING


def combined(results: list[DiskResult]) -> model.Choice:
    """One choice that stands for all disks: native only if every disk is."""
    return _combine({r.disk: r.choice for r in results})


def _combine(choices: dict[str, model.Choice]) -> model.Choice:
    strategies = sorted({c.strategy for c in choices.values()}) or ["none"]
    fallbacks = [f"{disk}: {c.reason}" for disk, c in choices.items() if not c.native]
    reasons = fallbacks or [f"{disk}: {c.reason}" for disk, c in choices.items()]
    return model.Choice(
        strategy="+".join(strategies),
        native=not fallbacks,
        reason="; ".join(reasons) or "no disks",
    )


def decide(
    ctx: context.Context,
    res: objects.Resource,
    obj: Json,
    *,
    operation: str,
    disks: Sequence[str],
    choose: Callable[[str], model.Choice],
) -> tuple[Json, dict[str, model.Choice]]:
    """Each disk's strategy: the one ``obj``'s status records, else ``choose(disk)`` now.

    New choices are written (and announced) before anything is made for
    them, so every later pass takes the same ones, also after a controller
    restart, whatever the report says by then. Returns ``obj`` as written.
    """
    kept = _recorded(obj)
    choices = {disk: kept.get(disk) or choose(disk) for disk in disks}
    if all(disk in kept for disk in disks):
        return obj, choices
    choice = _combine(choices)
    context.announce_choice(ctx, obj, operation=operation, choice=choice)
    picked = status.condition(
        status.STRATEGY,
        ok=True,
        reason=choice.strategy,
        message=choice.reason,
        generation=int((obj.get("metadata") or {}).get("generation") or 1),
    )
    pending = Progress.PENDING.value
    fields = {
        "phase": pending,
        **status.strategy_fields(operation, choice),
        "disks": [
            {"name": disk, "phase": pending, **status.strategy_fields(operation, c)}
            for disk, c in choices.items()
        ],
    }
    return context.write_status(ctx, res, obj, fields=fields, conditions=[picked]), choices


def decide_by_class(
    ctx: context.Context,
    res: objects.Resource,
    obj: Json,
    *,
    operation: str,
    disks: Sequence[crd.Disk],
) -> tuple[Json, dict[str, model.Choice]]:
    """`decide`, each new choice the plan of the disk's StorageClass."""
    classes = {d.name: d.storage_class for d in disks}
    return decide(
        ctx,
        res,
        obj,
        operation=operation,
        disks=list(classes),
        choose=lambda disk: strategy.choose(
            ctx.objs, storage_class=classes[disk], operation=operation
        ),
    )


def _recorded(obj: Json) -> dict[str, model.Choice]:
    found = {}
    for entry in strategy.for_this_spec(obj).get("disks") or ():
        choice = strategy.recorded(entry)
        if choice is not None:
            found[str(entry.get("name"))] = choice
    return found


def conclude(
    ctx: context.Context,
    res: objects.Resource,
    obj: Json,
    *,
    operation: str,
    results: list[DiskResult],
    extra: Json | None = None,
    on_ready: Callable[[], None] | None = None,
) -> Progress:
    """Write status, Events and metrics for the per-disk ``results``; return the overall state.

    ``on_ready`` runs before a Ready status is written: if it fails, the
    resource stays unfinished and the next reconcile tries again.
    """
    choice = combined(results)
    context.announce_choice(ctx, obj, operation=operation, choice=choice)
    state = overall(results)
    if state is Progress.READY and on_ready is not None:
        on_ready()
    gen = int((obj.get("metadata") or {}).get("generation") or 1)
    ready = status.condition(
        status.READY,
        ok=state is Progress.READY,
        reason=state.value,
        message="; ".join(r.message for r in results if r.message) or state.value,
        generation=gen,
    )
    picked = status.condition(
        status.STRATEGY, ok=True, reason=choice.strategy, message=choice.reason, generation=gen
    )
    fields = {
        "phase": state.value,
        **status.strategy_fields(operation, choice),
        "disks": [r.as_status(operation) for r in results],
        **(extra or {}),
    }
    _finish(ctx, obj, operation=operation, choice=choice, state=state)
    context.write_status(ctx, res, obj, fields=fields, conditions=[picked, ready])
    return state


def _finish(
    ctx: context.Context, obj: Json, *, operation: str, choice: model.Choice, state: Progress
) -> None:
    before = (obj.get("status") or {}).get("phase")
    if state is Progress.PENDING or before == state.value:
        return  # counted once, on the transition to a final state
    result = "success" if state is Progress.READY else "failure"
    ctx.metrics.operation(
        operation=operation,
        strategy=choice.strategy,
        result=result,
        seconds=context.age_seconds(ctx, obj),
    )
    ctx.events.record(
        obj,
        reason="Succeeded" if state is Progress.READY else "Failed",
        message=f"{operation} by {choice.strategy}: {state.value}",
        warning=state is Progress.FAILED,
    )
