"""Names of a fan-out's clones from one template: `lab-{i}` gives lab-1, lab-2, ...

`{i}` stands for 1 to the count; `{i:0N}` pads it with zeros to N digits
(lab-{i:03} gives lab-001). Read the same way by `csi-vm clone --count
--name-template` and by a CsiVMClone's count and nameTemplate; each says what
is wrong in its own words (an option, a field of a resource), so the faults
here are exceptions for the caller to word.
"""

from __future__ import annotations

import re

from csi_vm import config

#: `{i}`, or `{i:0N}` to pad i with zeros to N digits
_FIELD = re.compile(r"\{i(?::0([1-9]))?\}")


class TemplateError(ValueError):
    """A template that cannot name clones."""


class NoField(TemplateError):
    """The template has no `{i}`: every clone would have the same name."""


class StrayBraces(TemplateError):
    """Braces other than `{i}` or `{i:0N}`."""


class NotAName(TemplateError):
    """The template gives a name that is not a valid VM name."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name
        self.reason = reason


def names(template: str, count: int) -> tuple[str, ...]:
    """The `count` names of `template`, each a valid VM name; a `TemplateError` if not."""
    if not _FIELD.search(template):
        raise NoField(template)
    if re.search(r"[{}]", _FIELD.sub("", template)):
        raise StrayBraces(template)
    made = tuple(render(template, i) for i in range(1, count + 1))
    # Names differ only in i, so the first and the longest (the last) stand for all.
    for name in made[:1] + made[-1:]:
        try:
            config.check_name(name, what="VM name")
        except ValueError as err:
            raise NotAName(name, str(err)) from err
    return made


def render(template: str, i: int) -> str:
    """The name `template` gives clone number `i`."""
    return _FIELD.sub(lambda m: str(i).zfill(int(m.group(1) or 0)), template)
