"""Which strategy an operation takes on a StorageClass: its report decides, once.

A StorageCapabilityReport's ``status.plan`` is `capabilities.ladder.plan`
applied to what the cluster declares and, where a probe ran, what it
verified. Without a report yet, the controller takes the last rung of the
ladder (host copy), which needs nothing of the driver: slow but safe.

An operation takes the plan once: the choice is written into its status
before anything is made for it (`status.strategy_fields`), and every later
pass reads it back with `recorded`. A report that changes while a copy runs
(a probe finished, a driver upgraded) must not switch the operation to
another strategy half-way, leaving objects of both behind.
"""

from __future__ import annotations

from capabilities import ladder, model
from csi_vm import errors
from csi_vm.crd import kinds
from csi_vm.kube import objects


def choose(objs: objects.Objects, *, storage_class: str, operation: str) -> model.Choice:
    try:
        report = objs.get(kinds.REPORT, storage_class)
    except errors.NotFound:
        return _safest(operation, why=f"no StorageCapabilityReport for {storage_class!r} yet")
    planned = ((report.get("status") or {}).get("plan") or {}).get(operation)
    if not planned:
        return _safest(operation, why=f"report {storage_class!r} has no plan for {operation}")
    return model.Choice.model_validate(planned)


def _safest(operation: str, *, why: str) -> model.Choice:
    last = ladder.LADDERS[operation][-1]
    return model.Choice(strategy=last.strategy, native=last.native, reason=f"{last.what} ({why})")


def recorded(fields: objects.Json) -> model.Choice | None:
    """The choice status ``fields`` (written by `status.strategy_fields`) hold; None if none."""
    chosen = fields.get("strategy")
    if not chosen:
        return None
    # Statuses written before strategyReason existed keep only a fallback's reason.
    reason = fields.get("strategyReason") or fields.get("fallbackReason") or ""
    return model.Choice(strategy=str(chosen), native=bool(fields.get("native")), reason=str(reason))


def for_this_spec(obj: objects.Json) -> objects.Json:
    """``obj``'s status if it was written for the spec ``obj`` has now, else {}.

    A changed spec is a new request: what was chosen for the old one does
    not bind it.
    """
    state = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation") or 1
    return dict(state) if state.get("observedGeneration") == generation else {}
