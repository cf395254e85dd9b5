"""What a probe created, written down before it is created, so it can be removed.

Every object a probe makes is first recorded as an intent in a journal file
(one JSON line, flushed to disk), then created, then recorded with its id. Cleanup
runs in reverse order. After a kill -9 the journal is all that is left: the
`cleanup` command re-issues each recorded create (CSI creates are idempotent by
name, so this returns the existing object's id, or makes one that is removed
at once) and deletes it.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pydantic

#: every probe object name starts with this, so leftovers are recognisable
PREFIX = "csi-vm-probe-"


class Entry(pydantic.BaseModel):
    """One journal line."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    seq: int
    kind: str  # volume, snapshot, group_snapshot, stage, publish
    name: str
    object_id: str = ""
    spec: dict[str, Any] = {}
    done: bool = False  # the object was removed again


class Journal:
    """An append-only journal of one probe run on one endpoint."""

    def __init__(
        self, directory: pathlib.Path, *, endpoint: str, run_id: str | None = None
    ) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self.endpoint = endpoint
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = directory / f"probe-{self.run_id}.jsonl"
        self._seq = 0
        self._append({"endpoint": endpoint, "started": time.time()}, durable=True)

    def name(self, what: str) -> str:
        """A unique object name for this run."""
        self._seq += 1
        return f"{PREFIX}{self.run_id}-{what}-{self._seq}"

    def intent(self, *, kind: str, name: str, spec: dict[str, Any]) -> None:
        entry = Entry(seq=self._seq, kind=kind, name=name, spec=spec)
        self._append(entry.model_dump(), durable=True)

    def created(self, *, kind: str, name: str, object_id: str, spec: dict[str, Any]) -> None:
        entry = Entry(seq=self._seq, kind=kind, name=name, object_id=object_id, spec=spec)
        self._append(entry.model_dump(), durable=False)

    def removed(self, *, kind: str, name: str) -> None:
        entry = Entry(seq=self._seq, kind=kind, name=name, done=True)
        self._append(entry.model_dump(), durable=False)

    def finish(self) -> None:
        """Everything was removed: the journal is no longer needed."""
        self.path.unlink(missing_ok=True)

    def _append(self, data: dict[str, Any], *, durable: bool) -> None:
        line = json.dumps(data, sort_keys=True) + "\n"
        # A written line survives a kill -9 of this process (it is in the
        # kernel); only intents are also flushed to the disk, so that a power
        # cut right after a create cannot hide its object. A lost "created"
        # or "removed" line costs cleanup one idempotent re-create by name.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line.encode())
            if durable:
                os.fdatasync(fd)
        finally:
            os.close(fd)


def pending(path: pathlib.Path) -> tuple[str, list[Entry]]:
    """The endpoint of a journal and its objects not yet removed, newest first."""
    endpoint = ""
    latest: dict[tuple[str, str], Entry] = {}
    # Order by the line of each object's first intent: stage and publish
    # records share their volume's name counter, the file order does not lie.
    first_line: dict[tuple[str, str], int] = {}
    for number, data in enumerate(_lines(path)):
        if "endpoint" in data:
            endpoint = str(data["endpoint"])
            continue
        try:
            entry = Entry.model_validate(data)
        except pydantic.ValidationError:
            continue  # a line cut short by a crash: the intent before it still counts
        key = (entry.kind, entry.name)
        if entry.done:
            latest.pop(key, None)
            first_line.pop(key, None)
        elif entry.object_id or key not in latest:
            latest[key] = entry
            first_line.setdefault(key, number)
    return endpoint, sorted(
        latest.values(), key=lambda e: first_line[(e.kind, e.name)], reverse=True
    )


def journals(directory: pathlib.Path) -> list[pathlib.Path]:
    if not directory.is_dir():
        return []
    return sorted(directory.glob("probe-*.jsonl"))


def _lines(path: pathlib.Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict):
                yield data
