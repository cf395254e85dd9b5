"""Typed reads of the values of a parsed YAML document, each problem noted with its place.

The config file is read by every command that touches a VM, `vm list`
included; pydantic would cost each of them more start-up than the rest of the
command. Its shapes are few (mappings of text, one number, one list), so they
are checked here with plain Python, the same way pydantic reports them: every
problem is collected, one ``where: what is wrong`` entry each, and all of them
are raised together as one `Invalid`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

#: a place in the document: mapping keys and list indexes, outermost first
Where = tuple[str | int, ...]


class Invalid(ValueError):
    """The document does not have the shape asked for; ``problems`` says where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclasses.dataclass
class Problems:
    """The problems found so far, in document order."""

    found: list[str] = dataclasses.field(default_factory=list)

    def add(self, where: Where, message: str) -> None:
        self.found.append(f"{place(where)}: {message}")

    def check(self) -> None:
        if self.found:
            raise Invalid(self.found)


def place(where: Where) -> str:
    """``drivers.local.timeout``; keys that could break the line or hide are quoted."""
    return ".".join(_part(p) for p in where) or "(top level)"


def _part(part: object) -> str:
    text = str(part)
    return text if text.isprintable() and " " not in text else repr(text)


#: YAML's types in the words of someone who wrote the file; bool before int, its base
_KINDS: tuple[tuple[type, str], ...] = (
    (type(None), "empty"),
    (bool, "true/false"),
    (int, "a number"),
    (float, "a number"),
    (str, "text"),
    (list, "a list"),
    (dict, "a mapping"),
)


def kind(value: object) -> str:
    """What a YAML value is: "a list", "text", "empty", ..."""
    return next((word for cls, word in _KINDS if isinstance(value, cls)), type(value).__name__)


def mapping(
    value: object, where: Where, problems: Problems, *, shape: str
) -> dict[str, Any] | None:
    """``value`` as a mapping with text keys; None (and a problem) where it is not one.

    ``shape`` shows what the mapping should hold, e.g. ``NAME: {endpoint: ...}``.
    """
    if not isinstance(value, dict):
        problems.add(where, f"must be a mapping ({shape}), not {kind(value)}")
        return None
    found: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(key, str):
            found[key] = item
        else:
            problems.add((*where, str(key)), f"keys must be text, not {kind(key)}: quote the key")
    return found


def known_keys(
    data: Mapping[str, object], allowed: tuple[str, ...], where: Where, problems: Problems
) -> None:
    """A problem for each key not in ``allowed``: a typo must never be ignored."""
    for key in data:
        if key not in allowed:
            problems.add((*where, key), f"unknown key (allowed: {', '.join(allowed)})")


def text(value: object, where: Where, problems: Problems, *, needs: str = "") -> str:
    """``value`` as text; ``""`` (and a problem) where it is something else.

    ``needs`` says what a value that may not be empty stands for, e.g. "the
    node's libvirt URI": the problem of an empty one tells the user to give it.
    """
    if not isinstance(value, str):
        hint = ": quote it" if isinstance(value, int | float) else ""
        problems.add(where, f"must be text, not {kind(value)}{hint}")
        return ""
    if not value and needs:
        problems.add(where, f"must not be empty: give {needs}")
    return value


def texts(value: object, where: Where, problems: Problems) -> tuple[str, ...]:
    """A list of text, as a tuple."""
    if not isinstance(value, list):
        problems.add(where, f"must be a list of text ([a, b]), not {kind(value)}")
        return ()
    return tuple(text(item, (*where, i), problems) for i, item in enumerate(value))


def text_map(value: object, where: Where, problems: Problems) -> dict[str, str]:
    """A mapping of text to text."""
    data = mapping(value, where, problems, shape="key: text") or {}
    return {key: text(item, (*where, key), problems) for key, item in data.items()}


def seconds(
    value: object, where: Where, problems: Problems, *, limits: tuple[float, float]
) -> float:
    """A number of seconds (or numeric text) in ``(low, high]``; ``high`` (and a problem) if not."""
    low, high = limits
    found = _float(value)
    if found is None or math.isnan(found) or not low < found <= high:
        problems.add(where, f"must be a number of seconds above {low:g} and at most {high:g}")
        return high
    return found


def _float(value: object) -> float | None:
    # true/false is a slip, not a number; "10" is, as pydantic read it before.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):  # not a number; an integer past float's range
        return None
