"""What the cells of one CSI driver list row declare, as report features.

Everything here is declared-only: the list is what driver authors wrote
about their drivers, never tested. Each result's evidence quotes the column
text it was read from, so a reader can check the reading.
"""

from __future__ import annotations

import dataclasses
import re

from capabilities import mdtable, model

F = model.Feature


@dataclasses.dataclass(frozen=True, kw_only=True)
class Term:
    """One word of the list's "Other Features" vocabulary."""

    word: str
    pattern: re.Pattern[str]
    features: tuple[model.Feature, ...]


# The list's own note allows exactly these five words in "Other Features".
# Kubernetes snapshot support covers both taking a snapshot and provisioning a
# volume from it, so "Snapshot" declares restore as well.
VOCABULARY = (
    Term(word="Raw Block", pattern=re.compile(r"^raw[ -]?block\b"), features=(F.BLOCK,)),
    Term(
        word="Snapshot",
        pattern=re.compile(r"^snapshots?\b"),
        features=(F.SNAPSHOT, F.RESTORE_FROM_SNAPSHOT),
    ),
    Term(word="Expansion", pattern=re.compile(r"^expansion\b"), features=(F.EXPANSION_CONTROLLER,)),
    Term(word="Cloning", pattern=re.compile(r"^clon(e|ing)\b"), features=(F.CLONE,)),
    Term(word="Topology", pattern=re.compile(r"^topology\b"), features=(F.TOPOLOGY,)),
)
# Outside the vocabulary but unambiguous where a row states it.
CAPACITY = Term(
    word="Storage Capacity Tracking", pattern=re.compile(r"capacity"), features=(F.CAPACITY,)
)

_MULTI = re.compile(r"multiple pods?|multi[- ]node|readwritemany|\brwx\b")
_NEXT_MODE = re.compile(r"read/write|read only|readonly")

_NOT_LISTED = {
    F.EXPANSION_NODE: "the list does not say whether expansion needs the node",
    F.EXPANSION_ONLINE: "the list does not say whether expansion works while in use",
    F.EXPANSION_OFFLINE: "the list does not say whether expansion works while detached",
    F.MULTI_NODE_SHARED: "only a probe with two node endpoints can verify cross-node sharing",
    F.STAGE_UNSTAGE: "the list has no column for node staging",
    F.GROUP_SNAPSHOT: "the list has no column for group snapshots",
    F.SNAPSHOT_METADATA: "the list has no column for snapshot metadata",
    F.MODIFY_VOLUME: "the list has no column for volume modification",
    F.VOLUME_STATS: "the list has no column for volume statistics",
}


def items(cell: str) -> list[str]:
    """The entries of an "Other Features" cell; ``<br>`` separates like a comma."""
    return [item.strip() for item in mdtable.clean(cell, separator=",").split(",") if item.strip()]


def features(
    *, other: str | None, access: str | None, where: str
) -> tuple[dict[model.Feature, model.FeatureResult], list[str]]:
    """Features declared by a row, and the entries of "Other Features" not understood.

    ``other``/``access`` are None when the table has no such column; ``where``
    names the table for evidence then.
    """
    found: dict[model.Feature, model.FeatureResult] = {
        f: model.FeatureResult(evidence=reason) for f, reason in _NOT_LISTED.items()
    }
    found[F.FILESYSTEM] = model.FeatureResult(
        declared=True,
        evidence="every listed driver offers filesystem volumes; the list has no column for it",
    )
    found.update(_other(other, where=where))
    found.update(_access(access, block=found[F.BLOCK].declared, where=where))
    return {f: found[f] for f in model.Feature}, _unknown(other)


def _other(cell: str | None, *, where: str) -> dict[model.Feature, model.FeatureResult]:
    if cell is None:
        missing = model.FeatureResult(evidence=f"the {where} table has no Other Features column")
        return {f: missing for t in (*VOCABULARY, CAPACITY) for f in t.features}
    entries = items(cell)
    text = ", ".join(entries)
    result: dict[model.Feature, model.FeatureResult] = {}
    for term in VOCABULARY:
        result.update(_term(term, entries, text=text))
    capacity = _term(CAPACITY, entries, text=text)[F.CAPACITY]
    # Capacity is outside the list's vocabulary: its absence says nothing.
    result[F.CAPACITY] = (
        capacity
        if capacity.declared
        else model.FeatureResult(evidence="the list has no column for storage capacity tracking")
    )
    return result


def _term(term: Term, entries: list[str], *, text: str) -> dict[model.Feature, model.FeatureResult]:
    hit = next((e for e in entries if term.pattern.search(e.lower())), None)
    if hit is None:
        absent = f'Other Features: "{text}" does not list {term.word}'
        if not text:
            absent = f"Other Features is empty: no {term.word}"
        return {f: model.FeatureResult(declared=False, evidence=absent) for f in term.features}
    listed = f'Other Features lists "{hit}"'
    result = {f: model.FeatureResult(declared=True, evidence=listed) for f in term.features}
    if F.RESTORE_FROM_SNAPSHOT in result:
        result[F.RESTORE_FROM_SNAPSHOT] = model.FeatureResult(
            declared=True,
            evidence=f'implied by "{hit}" in Other Features: Kubernetes snapshot support '
            "includes provisioning a volume from a snapshot",
        )
    return result


def _unknown(cell: str | None) -> list[str]:
    if cell is None:
        return []
    terms = (*VOCABULARY, CAPACITY)
    return [e for e in items(cell) if not any(t.pattern.search(e.lower()) for t in terms)]


def _access(
    cell: str | None, *, block: bool | None, where: str
) -> dict[model.Feature, model.FeatureResult]:
    if cell is None:
        missing = f"the {where} table has no access modes column"
        return {f: model.FeatureResult(evidence=missing) for f in (F.RWX_FILESYSTEM, F.RWX_BLOCK)}
    text = mdtable.clean(cell)
    evidence = f'Supported Access Modes: "{text}"'
    lowered = text.lower()
    if "depend" in lowered:
        unsure = evidence + " (no fixed answer)"
        return {f: model.FeatureResult(evidence=unsure) for f in (F.RWX_FILESYSTEM, F.RWX_BLOCK)}
    fs, blk = _multi_writer(lowered, block=block)
    return {
        F.RWX_FILESYSTEM: model.FeatureResult(declared=fs, evidence=evidence),
        F.RWX_BLOCK: model.FeatureResult(
            declared=blk,
            evidence=evidence if blk is not None else evidence + " (volume mode not stated)",
        ),
    }


def _multi_writer(text: str, *, block: bool | None) -> tuple[bool, bool | None]:
    """(filesystem, block) multi-writer support from an access modes text.

    Rows qualify a mode with the volume mode it applies to ("Read/Write
    Multiple Pods (File Volume)"); an unqualified multi-pod mode is read as
    filesystem, the mode every listed driver has, and leaves block open.
    """
    scopes = [_scope(text, match.end()) for match in _MULTI.finditer(text)]
    if not scopes:
        return False, False
    unqualified = any("block" not in s and "file" not in s for s in scopes)
    filesystem = unqualified or any("file" in s for s in scopes)
    if block is False:
        return filesystem, False
    if any("block" in s for s in scopes):
        return filesystem, True
    return filesystem, None if unqualified else False


def _scope(text: str, start: int) -> str:
    """The words after a mode, up to the next mode: its qualifier, if any."""
    following = _NEXT_MODE.search(text, start)
    return text[start : following.start() if following else len(text)]
