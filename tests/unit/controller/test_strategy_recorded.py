"""A choice written into status reads back as the same choice (pure functions)."""

from __future__ import annotations

import pytest

from capabilities import model
from csi_vm.controller import strategy
from csi_vm.crd import status

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("operation", "choice"),
    [
        ("vm_snapshot", model.Choice(strategy="csi-snapshot", native=True, reason="verified")),
        ("vm_snapshot", model.Choice(strategy="host-copy", native=False, reason="no snapshots")),
        ("vm_clone", model.Choice(strategy="snapshot-restore", native=True, reason="no clone")),
    ],
    ids=["native", "fallback", "native-fallback"],
)
def test_written_fields_read_back_as_the_choice(operation: str, choice: model.Choice) -> None:
    fields = status.strategy_fields(operation, choice)
    # A merge patch drops None: what the API server keeps is what is read back.
    kept = {key: value for key, value in fields.items() if value is not None}
    assert strategy.recorded(kept) == choice


def test_a_status_from_before_strategy_reason_keeps_its_fallback_reason() -> None:
    old = {"strategy": "host-copy", "native": False, "fallbackReason": "no snapshots"}
    assert strategy.recorded(old) == model.Choice(
        strategy="host-copy", native=False, reason="no snapshots"
    )


def test_nothing_recorded_is_none() -> None:
    assert strategy.recorded({}) is None
    assert strategy.recorded({"phase": "Pending"}) is None


@pytest.mark.parametrize(
    ("observed", "generation", "kept"),
    [(3, 3, True), (2, 3, False), (None, 1, False)],
    ids=["same-spec", "spec-changed-since", "never-written"],
)
def test_only_a_status_of_the_current_spec_binds(
    observed: int | None, generation: int, kept: bool
) -> None:
    state = {"strategy": "host-copy", "native": False}
    if observed is not None:
        state["observedGeneration"] = observed
    obj = {"metadata": {"generation": generation}, "status": state}
    assert bool(strategy.for_this_spec(obj)) is kept
