"""Which strategy an operation takes on a StorageClass: its report decides.

A StorageCapabilityReport's ``status.plan`` is `capabilities.ladder.plan`
applied to what the cluster declares and, where a probe ran, what it
verified. Without a report yet, the controller takes the last rung of the
ladder (host copy), which needs nothing of the driver: slow but safe.
"""

from __future__ import annotations

from capabilities import ladder, model
from csi_vm import errors
from csi_vm.controller import kinds
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
