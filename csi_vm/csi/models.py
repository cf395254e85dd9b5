"""Typed, frozen models of what CSI drivers return and what csi-vm asks for.

Protobuf messages never leave the CSI adapter: `convert` turns them into these
models at the boundary, so flows and reports branch on plain Python values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import pydantic


class Frozen(pydantic.BaseModel):
    """Base of every boundary model: immutable, no unknown fields."""

    # defer_build: validators are built on first use, not at import, which
    # every command that only lists records would pay for.
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)


class VolumeMode(enum.StrEnum):
    BLOCK = "block"
    FILESYSTEM = "filesystem"


class AccessMode(enum.StrEnum):
    """CSI access modes; the names are the spec's enum names."""

    SINGLE_NODE_WRITER = "SINGLE_NODE_WRITER"
    SINGLE_NODE_READER_ONLY = "SINGLE_NODE_READER_ONLY"
    MULTI_NODE_READER_ONLY = "MULTI_NODE_READER_ONLY"
    MULTI_NODE_SINGLE_WRITER = "MULTI_NODE_SINGLE_WRITER"
    MULTI_NODE_MULTI_WRITER = "MULTI_NODE_MULTI_WRITER"
    SINGLE_NODE_SINGLE_WRITER = "SINGLE_NODE_SINGLE_WRITER"
    SINGLE_NODE_MULTI_WRITER = "SINGLE_NODE_MULTI_WRITER"

    @property
    def multi_node(self) -> bool:
        return self.name.startswith("MULTI_NODE")


class ControllerCapability(enum.StrEnum):
    CREATE_DELETE_VOLUME = "CREATE_DELETE_VOLUME"
    PUBLISH_UNPUBLISH_VOLUME = "PUBLISH_UNPUBLISH_VOLUME"
    LIST_VOLUMES = "LIST_VOLUMES"
    GET_CAPACITY = "GET_CAPACITY"
    CREATE_DELETE_SNAPSHOT = "CREATE_DELETE_SNAPSHOT"
    LIST_SNAPSHOTS = "LIST_SNAPSHOTS"
    CLONE_VOLUME = "CLONE_VOLUME"
    PUBLISH_READONLY = "PUBLISH_READONLY"
    EXPAND_VOLUME = "EXPAND_VOLUME"
    LIST_VOLUMES_PUBLISHED_NODES = "LIST_VOLUMES_PUBLISHED_NODES"
    VOLUME_CONDITION = "VOLUME_CONDITION"
    GET_VOLUME = "GET_VOLUME"
    SINGLE_NODE_MULTI_WRITER = "SINGLE_NODE_MULTI_WRITER"
    MODIFY_VOLUME = "MODIFY_VOLUME"
    GET_SNAPSHOT = "GET_SNAPSHOT"


class NodeCapability(enum.StrEnum):
    STAGE_UNSTAGE_VOLUME = "STAGE_UNSTAGE_VOLUME"
    GET_VOLUME_STATS = "GET_VOLUME_STATS"
    EXPAND_VOLUME = "EXPAND_VOLUME"
    VOLUME_CONDITION = "VOLUME_CONDITION"
    SINGLE_NODE_MULTI_WRITER = "SINGLE_NODE_MULTI_WRITER"
    VOLUME_MOUNT_GROUP = "VOLUME_MOUNT_GROUP"


class PluginService(enum.StrEnum):
    CONTROLLER_SERVICE = "CONTROLLER_SERVICE"
    VOLUME_ACCESSIBILITY_CONSTRAINTS = "VOLUME_ACCESSIBILITY_CONSTRAINTS"
    GROUP_CONTROLLER_SERVICE = "GROUP_CONTROLLER_SERVICE"
    SNAPSHOT_METADATA_SERVICE = "SNAPSHOT_METADATA_SERVICE"


class ExpansionType(enum.StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class PluginInfo(Frozen):
    name: str
    vendor_version: str
    manifest: Mapping[str, str] = {}


class PluginCapabilities(Frozen):
    services: frozenset[PluginService] = frozenset()
    expansion: frozenset[ExpansionType] = frozenset()


class VolumeCapability(Frozen):
    """How a volume is to be accessed: block or filesystem, and by whom."""

    mode: VolumeMode
    access: AccessMode
    fs_type: str = ""
    mount_flags: tuple[str, ...] = ()


class Topology(Frozen):
    segments: Mapping[str, str]


class VolumeSource(Frozen):
    """Create a volume as a clone of another volume."""

    volume_id: str


class SnapshotSource(Frozen):
    """Create a volume from a snapshot's content."""

    snapshot_id: str


ContentSource = VolumeSource | SnapshotSource


class Volume(Frozen):
    volume_id: str
    capacity_bytes: int
    volume_context: Mapping[str, str] = {}
    content_source: ContentSource | None = None
    accessible_topology: tuple[Topology, ...] = ()


class VolumeCondition(Frozen):
    abnormal: bool
    message: str = ""


class VolumeEntry(Frozen):
    """A volume as listed or fetched, with where it is published."""

    volume: Volume
    published_node_ids: tuple[str, ...] = ()
    condition: VolumeCondition | None = None


class Snapshot(Frozen):
    snapshot_id: str
    source_volume_id: str
    size_bytes: int
    ready_to_use: bool
    creation_time_ns: int = 0
    group_snapshot_id: str = ""


class GroupSnapshot(Frozen):
    group_snapshot_id: str
    snapshots: tuple[Snapshot, ...]
    ready_to_use: bool
    creation_time_ns: int = 0


class ExpandResult(Frozen):
    capacity_bytes: int
    node_expansion_required: bool = False


class NodeInfo(Frozen):
    node_id: str
    max_volumes_per_node: int = 0
    accessible_topology: Topology | None = None


class VolumeUsage(Frozen):
    unit: str  # "BYTES" or "INODES"
    available: int
    total: int
    used: int


class VolumeStats(Frozen):
    usage: tuple[VolumeUsage, ...]
    condition: VolumeCondition | None = None


class Extent(Frozen):
    """One allocated or changed range of a snapshot, in bytes."""

    offset: int
    length: int


class MetadataChunk(Frozen):
    """One streamed answer of the SnapshotMetadata service."""

    fixed_length: bool
    volume_capacity_bytes: int
    extents: tuple[Extent, ...]


class Secrets:
    """CSI secrets: passed to the driver, never shown in logs, reprs or reports."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def reveal(self) -> dict[str, str]:
        """The plain values, for building a request and nothing else."""
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Secrets(<{len(self._values)} redacted>)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._values)
