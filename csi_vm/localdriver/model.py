"""Typed, frozen records the driver core works with, free of protobuf types.

The gRPC layer converts requests into these once (`rpc_convert`); the core
never sees a protobuf message. Enum numbers mirror CSI v1 so conversion is a
plain int cast.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Generic, TypeVar

T = TypeVar("T")


class AccessMode(enum.IntEnum):
    """CSI VolumeCapability.AccessMode.Mode (numbers fixed by the spec)."""

    UNKNOWN = 0
    SINGLE_NODE_WRITER = 1
    SINGLE_NODE_READER_ONLY = 2
    MULTI_NODE_READER_ONLY = 3
    MULTI_NODE_SINGLE_WRITER = 4
    MULTI_NODE_MULTI_WRITER = 5
    SINGLE_NODE_SINGLE_WRITER = 6
    SINGLE_NODE_MULTI_WRITER = 7

    @property
    def multi_node(self) -> bool:
        return self in _MULTI_NODE

    @property
    def read_only(self) -> bool:
        return self in _READ_ONLY


_MULTI_NODE = frozenset(
    {
        AccessMode.MULTI_NODE_READER_ONLY,
        AccessMode.MULTI_NODE_SINGLE_WRITER,
        AccessMode.MULTI_NODE_MULTI_WRITER,
    }
)
_READ_ONLY = frozenset({AccessMode.SINGLE_NODE_READER_ONLY, AccessMode.MULTI_NODE_READER_ONLY})


@dataclasses.dataclass(frozen=True)
class Capability:
    """One VolumeCapability: block or mount (with fs type and flags), and an access mode."""

    block: bool
    mode: AccessMode
    fs_type: str = ""
    mount_flags: tuple[str, ...] = ()

    def to_json(self) -> str:
        fields = {
            "block": self.block,
            "mode": int(self.mode),
            "fs": self.fs_type,
            "flags": list(self.mount_flags),
        }
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Capability:
        raw = json.loads(text)
        return cls(
            block=bool(raw["block"]),
            mode=AccessMode(raw["mode"]),
            fs_type=str(raw["fs"]),
            mount_flags=tuple(raw["flags"]),
        )


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a new volume's content comes from: kind is 'snapshot' or 'volume'."""

    kind: str
    object_id: str


@dataclasses.dataclass(frozen=True)
class Volume:
    volume_id: str
    name: str
    size: int
    pinned_node: str | None  # None when the state dir is shared by several nodes
    source: Source | None
    parameters: dict[str, str]
    mutable: dict[str, str]
    created_ns: int
    #: access types CreateVolume asked for: ("block",), ("mount",) or both
    access_types: tuple[str, ...] = ("mount",)
    seq: int = 0

    def allows(self, cap: Capability) -> bool:
        return ("block" if cap.block else "mount") in self.access_types


def access_types(caps: tuple[Capability, ...]) -> tuple[str, ...]:
    return tuple(sorted({"block" if c.block else "mount" for c in caps}))


@dataclasses.dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    name: str | None  # members of a group snapshot have no name of their own
    source_volume_id: str
    size: int
    created_ns: int
    group_id: str | None
    parameters: dict[str, str]
    seq: int = 0


@dataclasses.dataclass(frozen=True)
class GroupSnapshot:
    group_id: str
    name: str
    source_volume_ids: tuple[str, ...]  # sorted, so equality means "same set"
    created_ns: int
    parameters: dict[str, str]
    members: tuple[Snapshot, ...] = ()


@dataclasses.dataclass(frozen=True)
class Condition:
    """CSI VolumeCondition: abnormal flag and a human message."""

    abnormal: bool
    message: str


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list call and the token for the next one ('' when done)."""

    items: tuple[T, ...]
    next_token: str
