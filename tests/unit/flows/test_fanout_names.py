"""A fan-out's name template: the names it gives, and one clear error for a bad one."""

from __future__ import annotations

import pytest

from csi_vm import errors
from csi_vm.flows import fanout_plan

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("template", "count", "names"),
    [
        ("lab-{i}", 3, ("lab-1", "lab-2", "lab-3")),
        ("lab-{i:03}", 2, ("lab-001", "lab-002")),
        ("{i}-of-web", 1, ("1-of-web",)),
        ("a{i}b{i}", 2, ("a1b1", "a2b2")),
    ],
)
def test_names(template: str, count: int, names: tuple[str, ...]) -> None:
    assert fanout_plan.names(template, count) == names


@pytest.mark.parametrize(
    ("template", "count", "needle"),
    [
        ("lab", 3, "has no {i}"),
        ("lab-{j}-{i}", 3, "only {i} or {i:0N}"),
        ("lab-{i:x}", 3, "has no {i}"),
        ("Lab-{i}", 3, "gives 'Lab-1', not a VM name"),
        ("lab/{i}", 3, "gives 'lab/1', not a VM name"),
        ("x" * 62 + "{i}", 10, "gives '" + "x" * 62 + "10'"),
        ("lab-{i}", 0, "--count 0"),
    ],
)
def test_bad_templates_are_refused(template: str, count: int, needle: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        fanout_plan.names(template, count)
    assert needle in str(caught.value)
    assert caught.value.exit_code == 2
