"""Evidence in plain words for people; the raw text stays in JSON and on hover.

Probes write evidence for whoever debugs a driver: CSI access modes as their
spec abbreviations (``SNW,MNRO``) or enum names, sizes as byte counts. An
administrator reading a report should not need the CSI spec open, so the
renderers for people show these words instead and keep the raw line one
hover away.
"""

from __future__ import annotations

import re

from capabilities import model
from csi_vm import sizes

# The abbreviations `capabilities.checks.controller` writes, one per CSI
# AccessMode, and the enum names; a unit test keeps them in step with the code.
ACCESS_MODES = {
    "SNW": "read-write on one node",
    "SNRO": "read-only on one node",
    "MNRO": "read-only on many nodes",
    "MNSW": "one writer on many nodes",
    "MNMW": "read-write on many nodes",
    "SNSW": "one writer on one node",
    "SNMW": "many writers on one node",
}
ENUM_NAMES = {
    "SINGLE_NODE_WRITER": "SNW",
    "SINGLE_NODE_READER_ONLY": "SNRO",
    "MULTI_NODE_READER_ONLY": "MNRO",
    "MULTI_NODE_SINGLE_WRITER": "MNSW",
    "MULTI_NODE_MULTI_WRITER": "MNMW",
    "SINGLE_NODE_SINGLE_WRITER": "SNSW",
    "SINGLE_NODE_MULTI_WRITER": "SNMW",
}

_ONE = "|".join(sorted([*ACCESS_MODES, *ENUM_NAMES], key=len, reverse=True))
# A comma-separated run of access modes, as the checks join them.
_MODES = re.compile(rf"\b(?:{_ONE})(?:,(?:{_ONE}))*\b")
# "1048576 bytes", "1048576 -> 2097152 bytes": below a KiB a count reads fine.
_BYTES = re.compile(r"\b(\d{4,})(?: -> (\d{4,}))? bytes\b")


def words(evidence: str) -> str:
    """``evidence`` with access modes and byte counts spelled out; other text unchanged."""
    text = _MODES.sub(lambda hit: ", ".join(_mode(m) for m in hit.group().split(",")), evidence)
    return _BYTES.sub(_size, text)


def hover(result: model.FeatureResult | None) -> str:
    """The raw evidence, for a title attribute; empty when the plain words say the same."""
    if result is None or words(result.evidence) == result.evidence:
        return ""
    return result.evidence


def _mode(name: str) -> str:
    return ACCESS_MODES[ENUM_NAMES.get(name, name)]


def _size(hit: re.Match[str]) -> str:
    first, second = hit.group(1), hit.group(2)
    shown = sizes.binary(int(first))
    return f"{shown} -> {sizes.binary(int(second))}" if second else shown
