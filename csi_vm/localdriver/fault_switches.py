"""TEST ONLY: make the local driver misbehave the way some real drivers do.

Each switch (`--fault NAME`, repeatable) makes one kind of lie, so that the
probe and the flows can be tested against it:

    undeclared-FEATURE  serve the feature's RPCs but leave them out of the
                        capabilities (FEATURE: snapshot, clone, expansion,
                        group-snapshot, stage-unstage, modify, stats)
    expand-no-grow      Controller/NodeExpandVolume answer success and the new
                        size, but the image and its device keep their size
    clone-blank         CreateVolume from a volume answers ready, with no data
    snapshot-blank      CreateSnapshot answers ready, with no data (so every
                        volume restored from it is blank)
    restore-blank       CreateVolume from a snapshot answers ready, with no
                        data; the snapshot itself keeps its data
    oversize            volumes are created an eighth smaller than the size
                        they report: the device holds less than the answer says

Production code asks one question per switch here and otherwise reads as if
switches did not exist. With no --fault, every question answers "behave".
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from csi_vm.localdriver.config import DriverConfig


class Fault(enum.StrEnum):
    UNDECLARED_SNAPSHOT = "undeclared-snapshot"
    UNDECLARED_CLONE = "undeclared-clone"
    UNDECLARED_EXPANSION = "undeclared-expansion"
    UNDECLARED_GROUP_SNAPSHOT = "undeclared-group-snapshot"
    UNDECLARED_STAGE_UNSTAGE = "undeclared-stage-unstage"
    UNDECLARED_MODIFY = "undeclared-modify"
    UNDECLARED_STATS = "undeclared-stats"
    EXPAND_NO_GROW = "expand-no-grow"
    CLONE_BLANK = "clone-blank"
    SNAPSHOT_BLANK = "snapshot-blank"
    RESTORE_BLANK = "restore-blank"
    OVERSIZE = "oversize"


#: capability names each undeclared-* switch takes out of the answers
_HIDDEN: dict[Fault, frozenset[str]] = {
    Fault.UNDECLARED_SNAPSHOT: frozenset(
        {"CREATE_DELETE_SNAPSHOT", "LIST_SNAPSHOTS", "GET_SNAPSHOT", "SNAPSHOT_METADATA_SERVICE"}
    ),
    Fault.UNDECLARED_CLONE: frozenset({"CLONE_VOLUME"}),
    # ONLINE is the plugin's expansion type, EXPAND_VOLUME the controller and node bits.
    Fault.UNDECLARED_EXPANSION: frozenset({"EXPAND_VOLUME", "ONLINE"}),
    Fault.UNDECLARED_GROUP_SNAPSHOT: frozenset(
        {"GROUP_CONTROLLER_SERVICE", "CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT"}
    ),
    Fault.UNDECLARED_STAGE_UNSTAGE: frozenset({"STAGE_UNSTAGE_VOLUME"}),
    Fault.UNDECLARED_MODIFY: frozenset({"MODIFY_VOLUME"}),
    Fault.UNDECLARED_STATS: frozenset({"GET_VOLUME_STATS"}),
}

#: an `oversize` image lacks this share of its reported size (even the smallest
#: volume, 1 MiB, then shows a device too small)
OVERSIZE_SHARE = 8


def declared(config: DriverConfig, names: list[str]) -> list[str]:
    """Capability names as answered: without those an undeclared-* switch hides."""
    hidden: set[str] = set()
    for fault in config.faults:
        hidden |= _HIDDEN.get(fault, frozenset())
    return [name for name in names if name not in hidden]


def grows(config: DriverConfig) -> bool:
    """False under expand-no-grow: answer the expansion, change nothing."""
    return Fault.EXPAND_NO_GROW not in config.faults


def copies_source(config: DriverConfig, kind: str) -> bool:
    """False when a new volume from a source of `kind` ("volume": a clone,
    "snapshot": a restore) is to be left blank."""
    blank = Fault.CLONE_BLANK if kind == "volume" else Fault.RESTORE_BLANK
    return blank not in config.faults


def cuts_snapshot(config: DriverConfig) -> bool:
    """False under snapshot-blank: a new snapshot is to be left blank."""
    return Fault.SNAPSHOT_BLANK not in config.faults


def image_size(config: DriverConfig, size: int) -> int:
    """The bytes a new image really gets for a volume recorded (and answered) as `size`."""
    if Fault.OVERSIZE in config.faults:
        return size - size // OVERSIZE_SHARE
    return size
