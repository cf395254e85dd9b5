"""A fan-out's names, and how its clones add up: pure logic, no API server."""

from __future__ import annotations

import pytest

from csi_vm import errors
from csi_vm.controller import clone_fanout, storage

P = storage.Progress
WHAT = "CsiVMClone lab"


@pytest.mark.parametrize(
    ("template", "count", "names"),
    [
        ("lab-{i}", 3, ("lab-1", "lab-2", "lab-3")),
        ("lab-{i:03}", 2, ("lab-001", "lab-002")),
        ("lab-{i:02}", 100, ("lab-01", "lab-100")),  # padding is a width, not a limit
        ("r{i}.lab-{i}", 1, ("r1.lab-1",)),
    ],
    ids=["plain", "padded", "wider-than-padding", "twice"],
)
def test_names_of_a_template(template: str, count: int, names: tuple[str, ...]) -> None:
    made = clone_fanout.names(template, count, what=WHAT)
    assert len(made) == count
    assert (made[0], made[-1]) == (names[0], names[-1])


@pytest.mark.parametrize(
    ("template", "count", "message"),
    [
        ("lab", 2, "must hold {i} or {i:0N}"),
        ("lab-{n}", 2, "must hold {i} or {i:0N}"),
        ("lab-{i}-{x}", 2, "must hold {i} or {i:0N}"),
        ("lab-{i:3}", 2, "must hold {i} or {i:0N}"),
        ("-lab{i}", 2, "gives an invalid name: VM name '-lab1'"),
        (
            "x" * 60 + "{i}",
            1000,
            "gives an invalid name: VM name '" + "x" * 60 + "1000'",
        ),  # only the last is too long
    ],
    ids=["no-field", "other-field", "extra-braces", "width-without-zero", "bad-start", "too-long"],
)
def test_a_template_that_cannot_name_vms_is_refused(
    template: str, count: int, message: str
) -> None:
    with pytest.raises(errors.InvalidInput, match=r"^CsiVMClone lab: nameTemplate") as caught:
        clone_fanout.names(template, count, what=WHAT)
    assert message in str(caught.value)


def _obj(**spec: object) -> dict[str, object]:
    return {
        "kind": "CsiVMClone",
        "metadata": {"name": "lab"},
        "spec": {"sourceVMName": "web", **spec},
    }


def test_targets_of_one_clone_and_of_a_fan_out() -> None:
    one = clone_fanout.targets(_obj(targetVMName="web2"))
    assert (one.source, one.names, one.fan_out) == ("web", ("web2",), False)
    many = clone_fanout.targets(_obj(count=2, nameTemplate="lab-{i}"))
    assert (many.source, many.names, many.fan_out) == ("web", ("lab-1", "lab-2"), True)


def test_summary_counts_and_names_the_failures() -> None:
    clones = [clone_fanout.Clone(f"lab-{i}", P.FAILED, f"why {i}") for i in range(1, 6)]
    clones.append(clone_fanout.Clone("lab-6", P.READY))
    fields, message = clone_fanout.summary(clones)
    assert (fields["done"], fields["failed"]) == (1, 5)
    assert message == (
        "1 of 6 clones made, 5 failed: lab-1: why 1; lab-2: why 2; lab-3: why 3; "
        "... (2 more in status.clones)"
    )
    assert fields["clones"][-1] == {"name": "lab-6", "phase": "Ready"}  # type: ignore[index]


@pytest.mark.parametrize(
    ("phases", "overall"),
    [
        ((P.READY, P.PENDING, P.FAILED), P.PENDING),
        ((P.READY, P.READY), P.READY),
        ((P.READY, P.FAILED), P.FAILED),
    ],
    ids=["one-pending", "all-ready", "ended-with-a-failure"],
)
def test_overall(phases: tuple[storage.Progress, ...], overall: storage.Progress) -> None:
    clones = [clone_fanout.Clone(f"c{i}", p) for i, p in enumerate(phases)]
    assert clone_fanout.overall(clones) is overall


def test_settled_clones_come_from_the_status() -> None:
    obj = {
        "status": {
            "clones": [
                {"name": "a", "phase": "Ready"},
                {"name": "b", "phase": "Pending"},
                {"name": "c", "phase": "Failed", "message": "no room"},
            ]
        }
    }
    assert clone_fanout.settled(obj) == {
        "a": clone_fanout.Clone("a", P.READY),
        "c": clone_fanout.Clone("c", P.FAILED, "no room"),
    }
