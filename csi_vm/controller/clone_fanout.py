"""A CsiVMClone with count and nameTemplate: many VMs from one, each a clone of its own.

The spec names either one target (targetVMName) or a fan-out (count and
nameTemplate, `{i}` standing for 1 to count and `{i:0N}` for the same padded
to N digits, as `csi-vm clone --count --name-template` reads it). Every clone
is made as a single clone's target is, and stands on its own in the status:
one that fails (its name taken by a VM the clone did not make, a copy Job
that failed) is listed as Failed while the others go on. A clone listed
Ready or Failed is not worked on again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import pydantic

from csi_vm import errors, nametemplate
from csi_vm.controller import storage
from csi_vm.crd import models as crd
from csi_vm.kube import objects

Json = objects.Json
Progress = storage.Progress


class FanOutSpec(crd.Frozen):
    source: str = pydantic.Field(alias="sourceVMName")
    count: int = pydantic.Field(ge=1)
    template: str = pydantic.Field(alias="nameTemplate")


@dataclasses.dataclass(frozen=True)
class Targets:
    """What a CsiVMClone asks for: its source, and the names of the VMs to make."""

    source: str
    names: tuple[str, ...]
    fan_out: bool


def targets(obj: Json) -> Targets:
    """The clone's source and targets; `errors.InvalidInput` for a spec that cannot work."""
    what = f"CsiVMClone {crd.meta(obj).name}"
    raw = obj.get("spec")
    given = set(raw) if isinstance(raw, dict) else set()
    if given & {"count", "nameTemplate"}:
        if "targetVMName" in given:
            raise errors.InvalidInput(
                f"{what}: targetVMName and count/nameTemplate both given",
                hint="name one target with targetVMName, or many with count and nameTemplate",
            )
        if not {"count", "nameTemplate"} <= given:
            raise errors.InvalidInput(
                f"{what}: count and nameTemplate go together",
                hint="e.g. count: 20 and nameTemplate: lab-{i}",
            )
        fan = crd.spec(obj, FanOutSpec)
        return Targets(fan.source, names(fan.template, fan.count, what=what), fan_out=True)
    if "targetVMName" not in given:
        raise errors.InvalidInput(
            f"{what}: no target",
            hint="name one target with targetVMName, or many with count and nameTemplate",
        )
    one = crd.spec(obj, crd.CloneSpec)
    return Targets(one.source, (one.target,), fan_out=False)


def names(template: str, count: int, *, what: str) -> tuple[str, ...]:
    """The `count` names of `template`, each a valid VM name; `errors.InvalidInput` if not."""
    try:
        made = nametemplate.names(template, count)
    except nametemplate.NotAName as err:
        raise errors.InvalidInput(
            f"{what}: nameTemplate {template!r} gives an invalid name: {err.reason}",
            hint="e.g. lab-{i}: lowercase letters, digits and '-' around {i}",
        ) from err
    except nametemplate.TemplateError as err:
        raise errors.InvalidInput(
            f"{what}: nameTemplate {template!r} must hold {{i}} or {{i:0N}}, "
            "and nothing else in braces",
            hint="e.g. lab-{i} (lab-1, lab-2, ...) or lab-{i:03} (lab-001, ...)",
        ) from err
    if len(set(made)) < len(made):  # {i:0N} cannot make names the same; kept as a guard
        raise errors.InvalidInput(f"{what}: nameTemplate {template!r} repeats names")
    return made


@dataclasses.dataclass(frozen=True)
class Clone:
    """One clone of a fan-out and where it stands."""

    name: str
    progress: Progress
    message: str = ""

    def as_status(self) -> Json:
        entry: Json = {"name": self.name, "phase": self.progress.value}
        return {**entry, "message": self.message} if self.message else entry


def settled(obj: Json) -> dict[str, Clone]:
    """Clones the status already lists as Ready or Failed: they are not made again."""
    found = {}
    for entry in (obj.get("status") or {}).get("clones") or ():
        phase = entry.get("phase")
        if phase in (Progress.READY.value, Progress.FAILED.value):
            name = str(entry.get("name"))
            found[name] = Clone(name, Progress(phase), str(entry.get("message") or ""))
    return found


def overall(clones: Sequence[Clone]) -> Progress:
    """Pending while any clone is; then Ready if every clone is, else Failed."""
    if any(c.progress is Progress.PENDING for c in clones):
        return Progress.PENDING
    if all(c.progress is Progress.READY for c in clones):
        return Progress.READY
    return Progress.FAILED


def summary(clones: Sequence[Clone]) -> tuple[Json, str]:
    """The status fields of a fan-out, and its one-line message."""
    done = sum(c.progress is Progress.READY for c in clones)
    failed = [c for c in clones if c.progress is Progress.FAILED]
    message = f"{done} of {len(clones)} clones made"
    if failed:
        message += f", {len(failed)} failed: " + "; ".join(_first(failed, 3))
    fields: Json = {
        "clones": [c.as_status() for c in clones],
        "done": done,
        "failed": len(failed),
        "message": message,
    }
    return fields, message


def _first(failed: Iterable[Clone], n: int) -> list[str]:
    """The first n failures, each with its reason; the status lists them all."""
    listed = [f"{c.name}: {c.message}" for c in failed]
    return listed[:n] + (
        [f"... ({len(listed) - n} more in status.clones)"] if len(listed) > n else []
    )
