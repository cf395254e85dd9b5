"""What every reconciler gets, and the one place status is written."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable

from capabilities import model
from csi_vm.controller import launchpod, metrics
from csi_vm.crd import events, kinds, status, status_write
from csi_vm.crd import models as crd
from csi_vm.kube import api as kube_api
from csi_vm.kube import objects

Json = objects.Json

#: Phases only the node agent writes, by resource. Once the agent moved an
#: object into one, a controller decision from an older read is not written.
#: (A VM's phases are shared: `reconcile_vm` works its phase out again instead.)
AGENT_PHASES: dict[objects.Resource, tuple[str, ...]] = {
    kinds.MIGRATION: ("Running", "Succeeded", "Failed"),
}


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Context:
    api: kube_api.Api
    objs: objects.Objects
    events: events.Recorder
    metrics: metrics.Metrics
    #: the csi-vm image, for host-copy Jobs and verification holder Pods
    image: str
    #: where verification PVCs, VolumeSnapshots and Pods go (the release's namespace)
    probe_namespace: str = "default"
    clock: Callable[[], datetime.datetime] = _utc_now
    #: set: each running VM gets a launcher Pod (`launchpod`); None: guests run
    #: in the node DaemonSet's libvirt, and a holder Pod publishes the disks
    launcher: launchpod.Settings | None = None


def write_status(
    ctx: Context, res: objects.Resource, obj: Json, *, fields: Json, conditions: list[Json]
) -> Json:
    """Patch ``obj``'s status with ``fields`` and merged ``conditions``; the object as written.

    After a conflict the same fields and conditions go onto the object as it
    is now, unless it moved out of this pass's hands since ``obj`` was read:
    the node agent took it over (`AGENT_PHASES`), or it finished (a pass from
    an older watch event must not turn Ready into anything else). Then
    nothing is written and `errors.Busy` says so.
    """
    phases = AGENT_PHASES.get(res, ())
    taken = status_write.unless_taken(obj, fields=fields, conditions=conditions, phases=phases)

    def change(now: Json) -> tuple[Json, list[Json]] | None:
        return None if finished(now) and not finished(obj) else taken(now)

    return update_status(ctx, res, obj, change=change)


def update_status(
    ctx: Context, res: objects.Resource, obj: Json, *, change: status_write.Change
) -> Json:
    """Patch ``obj``'s status with what ``change`` works out from the object as it is now."""
    return status_write.write(ctx.objs, res, obj, change=change, observed=True)


def announce_choice(ctx: Context, obj: Json, *, operation: str, choice: model.Choice) -> None:
    """One Event when a strategy is first chosen; a fallback is a Warning that says why."""
    if (obj.get("status") or {}).get("strategy"):
        return  # announced on an earlier pass
    what = operation
    if not status.is_fallback(operation, choice):
        ctx.events.record(
            obj, reason="StrategyChosen", message=f"{what}: {choice.strategy}: {choice.reason}"
        )
    else:
        ctx.events.record(
            obj,
            reason="FallbackStrategy",
            message=f"{what}: {choice.strategy}, because {choice.reason}",
            warning=True,
        )


def age_seconds(ctx: Context, obj: Json) -> float:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return 0.0
    when = datetime.datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.UTC
    )
    return max(0.0, (ctx.clock() - when).total_seconds())


def refuse(ctx: Context, res: objects.Resource, obj: Json, *, reason: str, message: str) -> None:
    """Mark ``obj`` as waiting or failed for a reason outside its own work, with an Event."""
    gen = crd.meta(obj).generation
    old = obj.get("status") or {}
    if old.get("message") != message:
        ctx.events.record(obj, reason=reason, message=message, warning=True)
    cond = status.condition(status.READY, ok=False, reason=reason, message=message, generation=gen)
    write_status(ctx, res, obj, fields={"phase": reason, "message": message}, conditions=[cond])


def finished(obj: Json) -> bool:
    """Whether an operation reached a final phase for its current spec: then it stays so.

    A finished clone or restore has handed its claims to the new VM; working
    on it again would find them owned by someone else.
    """
    state = obj.get("status") or {}
    generation = crd.meta(obj).generation
    return (
        state.get("phase") in ("Ready", "Failed") and state.get("observedGeneration") == generation
    )
