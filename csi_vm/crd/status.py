"""Status conditions: what the controller or a node agent last decided about an object, and why.

Conditions follow the Kubernetes API conventions (type, status, reason,
message, lastTransitionTime, observedGeneration). Every operation writes a
``StrategyChosen`` condition whose reason is the strategy and whose message
is the ladder's reason, fallback included, as CDI annotates a clone that fell
back to host-assisted copy.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from capabilities import ladder, model
from csi_vm.crd import events
from csi_vm.crd import models as crd
from csi_vm.kube import objects

READY = "Ready"
STRATEGY = "StrategyChosen"


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def condition(
    kind: str,
    *,
    ok: bool,
    reason: str,
    message: str,
    generation: int,
    clock: Callable[[], datetime.datetime] = _utc_now,
) -> objects.Json:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": _reason(reason),
        "message": message,
        "lastTransitionTime": clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "observedGeneration": generation,
    }


def current(obj: objects.Json, kind: str) -> objects.Json:
    """The condition of type ``kind`` on ``obj`` now; {} when it has none."""
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def tell(
    recorder: events.Recorder, obj: objects.Json, *, kind: str, reason: str, message: str, ok: bool
) -> objects.Json:
    """A condition of type ``kind``, with an Event the first time its message appears.

    Every pass of a loop computes the condition again; the Event is for a
    change, not for each pass.
    """
    if current(obj, kind).get("message") != message:
        recorder.record(obj, reason=reason, message=message, warning=not ok)
    return condition(
        kind, ok=ok, reason=reason, message=message, generation=crd.meta(obj).generation
    )


def merged(old: list[objects.Json], new: list[objects.Json]) -> list[objects.Json]:
    """``old`` with ``new`` replacing same-type entries; a transition time moves only on change."""
    by_type = {str(c.get("type")): c for c in old}
    for cond in new:
        prior = by_type.get(str(cond["type"]))
        kept = (
            prior.get("lastTransitionTime")
            if prior and prior.get("status") == cond["status"]
            else None
        )
        by_type[str(cond["type"])] = {
            **cond,
            "lastTransitionTime": kept or cond["lastTransitionTime"],
        }
    return list(by_type.values())


def is_fallback(operation: str, choice: model.Choice) -> bool:
    """Whether ``choice`` is below the ladder's first rung (snapshot-restore for a clone is)."""
    return choice.strategy != ladder.LADDERS[operation][0].strategy


def strategy_fields(operation: str, choice: model.Choice) -> objects.Json:
    """The status fields that name the strategy and, for a fallback, why."""
    fallback = is_fallback(operation, choice)
    return {
        "strategy": choice.strategy,
        "native": choice.native,
        # A printer column cannot test whether fallbackReason is set, so
        # whether this is a fallback is a field of its own.
        "fallback": fallback,
        "fallbackReason": choice.reason if fallback else None,
        # The whole choice, so later passes take it as made (`strategy.recorded`).
        "strategyReason": choice.reason,
    }


def _reason(text: str) -> str:
    # Condition reasons are CamelCase identifiers by API convention.
    words = [w for w in text.replace("_", "-").split("-") if w]
    return "".join(w[:1].upper() + w[1:] for w in words) or "Unknown"
