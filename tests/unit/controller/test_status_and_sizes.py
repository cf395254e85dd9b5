"""Pure parts of the controller: conditions, strategy fields."""

from __future__ import annotations

import datetime

import pytest

from capabilities import model
from csi_vm.crd import status

pytestmark = pytest.mark.timeout(10)
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    first = status.condition(
        "Ready", ok=False, reason="pending", message="", generation=1, clock=lambda: T0
    )
    later = T0 + datetime.timedelta(minutes=5)
    again = status.condition(
        "Ready", ok=False, reason="pending", message="", generation=1, clock=lambda: later
    )
    assert status.merged([first], [again])[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    flipped = status.condition(
        "Ready", ok=True, reason="ready", message="", generation=1, clock=lambda: later
    )
    assert status.merged([first], [flipped])[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


@pytest.mark.parametrize(
    ("operation", "strategy", "fallback"),
    [
        ("vm_clone", "csi-clone", False),
        ("vm_clone", "snapshot-restore", True),
        ("vm_snapshot", "host-copy", True),
        ("disk_expand", "csi-expand", False),
    ],
    ids=["clone-native", "clone-via-snapshot", "snapshot-copy", "expand-native"],
)
def test_a_fallback_is_any_rung_below_the_first(
    operation: str, strategy: str, fallback: bool
) -> None:
    choice = model.Choice(strategy=strategy, native=strategy != "host-copy", reason="why")
    fields = status.strategy_fields(operation, choice)
    assert (fields["fallbackReason"] == "why") is fallback


def test_condition_reasons_are_camel_case() -> None:
    cond = status.condition(
        "StrategyChosen", ok=True, reason="snapshot-restore", message="", generation=3
    )
    assert (cond["reason"], cond["observedGeneration"]) == ("SnapshotRestore", 3)
