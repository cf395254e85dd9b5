"""Kubernetes resource quantities ("10Gi", "500M", "1e9") as byte counts."""

from __future__ import annotations

import re

from csi_vm import errors

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
}
_FORM = re.compile(r"^([0-9]+(?:\.[0-9]+)?(?:[eE][0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")


def to_bytes(text: str) -> int:
    match = _FORM.match(text.strip())
    if not match:
        raise errors.InvalidInput(f"{text!r} is not a size such as 10Gi or 500M")
    return int(float(match.group(1)) * _SUFFIX[match.group(2) or ""])
