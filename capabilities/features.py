"""The features a capability report covers, and why a plan trusts each one.

Plain enums, apart from the report's pydantic models: the command line
lists them in its help, which must not pay for pydantic.
"""

from __future__ import annotations

import enum


class Feature(enum.StrEnum):
    """The feature keys of a report, in report order."""

    SNAPSHOT = "snapshot"
    CLONE = "clone"
    RESTORE_FROM_SNAPSHOT = "restore_from_snapshot"
    EXPANSION_CONTROLLER = "expansion_controller"
    EXPANSION_NODE = "expansion_node"
    EXPANSION_ONLINE = "expansion_online"
    EXPANSION_OFFLINE = "expansion_offline"
    BLOCK = "block"
    FILESYSTEM = "filesystem"
    RWX_BLOCK = "rwx_block"
    RWX_FILESYSTEM = "rwx_filesystem"
    MULTI_NODE_SHARED = "multi_node_shared"
    STAGE_UNSTAGE = "stage_unstage"
    TOPOLOGY = "topology"
    CAPACITY = "capacity"
    GROUP_SNAPSHOT = "group_snapshot"
    SNAPSHOT_METADATA = "snapshot_metadata"
    MODIFY_VOLUME = "modify_volume"
    VOLUME_STATS = "volume_stats"


class Basis(enum.StrEnum):
    """Why a plan trusts (or does not trust) a feature."""

    VERIFIED = "verified"
    DECLARED = "declared"
    INFERRED = "inferred"
    ASSERTED = "asserted"
