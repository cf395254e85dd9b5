"""Disk sizes as Kubernetes quantities, and back as binary units for people.

A suffix means what it means in Kubernetes: `Ki Mi Gi Ti Pi` are powers of
1024, `k M G T P` powers of 1000, so `20G` here is the `20G` of a PVC
(20,000,000,000 bytes) and `20Gi` is 20 x 2^30. Two spellings Kubernetes
refuses are accepted because people write them: `MiB`-style (the same as
`Mi`) and `GB`-style, read as decimal like `G`; the latter comes with a note,
since some tools read `GB` as binary.

The grammar mirrors `kubernetes.utils.parse_quantity` for the suffixes a disk
needs; the client itself is not imported because it would add most of a
second to every command's start-up.
"""

from __future__ import annotations

import dataclasses
import math
import re

# `binary` lives apart, for `vm show`'s start-up: see humansize.
from csi_vm.humansize import binary as binary  # noqa: PLC0414 - re-exported

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5}
_DECIMAL = {"k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_QUANTITY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")
HELP = (
    "A size as in Kubernetes: 64Mi, 20Gi (powers of 1024), 20G (powers of 1000) "
    "or a number of bytes."
)


@dataclasses.dataclass(frozen=True)
class Size:
    """Bytes, and a note for the user when the spelling was ambiguous."""

    bytes: int
    note: str | None = None


def parse(text: str, *, field: str = "size") -> Size:
    """`text` as a quantity; ValueError naming `field` when it is not one."""
    # decimal only where a size is read: `image copy` prints sizes on every run
    # and reads one only with --min-size.
    import decimal  # noqa: PLC0415

    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"{field} {text!r} is not a size like 64Mi, 20Gi, 20G or 1048576")
    number, suffix = decimal.Decimal(match.group(1)), match.group(2)
    factor, note = _factor(suffix, text=text, field=field)
    # A fraction of a byte rounds up, as the API server's Value() does.
    value = math.ceil(number * factor)
    if note is not None:
        note = (
            f"{field} {text!r} {note}: {value} bytes; write {_binary_hint(text)} for powers of 1024"
        )
    return Size(bytes=value, note=note)


def _factor(suffix: str, *, text: str, field: str) -> tuple[int, str | None]:
    if suffix in ("", "B"):
        return 1, None
    if suffix in _BINARY:
        return 1024 ** _BINARY[suffix], None
    if suffix in _DECIMAL:
        return 1000 ** _DECIMAL[suffix], None
    if suffix.endswith("iB") and suffix[:-1] in _BINARY:  # MiB: the IEC spelling of Mi
        return 1024 ** _BINARY[suffix[:-1]], None
    if suffix[:-1] in _DECIMAL and suffix[-1:] == "B":  # GB: decimal, as Kubernetes reads G
        return 1000 ** _DECIMAL[suffix[:-1]], "is read as decimal (G = 1000^3, as in Kubernetes)"
    if suffix == "m":
        raise ValueError(
            f"{field} {text!r}: 'm' means milli in Kubernetes; write M (10^6) or Mi (2^20)"
        )
    raise ValueError(
        f"{field} {text!r} has an unknown unit {suffix!r}: use Ki, Mi, Gi, Ti (powers of 1024) "
        "or k, M, G, T (powers of 1000)"
    )


def _binary_hint(text: str) -> str:
    match = _QUANTITY.match(text)
    assert match is not None  # only called on text parse() matched
    return f"{match.group(1)}{match.group(2)[:1].upper()}i"
