"""The hand-over between controller and node agent for a snapshot of a running VM.

A VM in its launcher Pod can only be frozen by the agent of its node (the
launcher's libvirt socket is there), and storage is only made by the
controller. So they take turns through ``status.online`` of the
CsiVMSnapshot:

1. the controller, before it makes any VolumeSnapshot, asks: FreezeRequested;
2. the agent freezes the guest's filesystems through its guest agent and
   says Frozen, or NotFrozen with why (no guest agent: crash-consistent);
3. the controller makes the VolumeSnapshots;
4. the agent waits until each is cut (``status.creationTime``), thaws and
   says Thawed; one not cut within `CUT_WITHIN_S` is thawed anyway and the
   snapshot Failed, which the controller then cleans up.

An agent that finds Frozen at the start of a pass died while the guest was
frozen: it goes on at step 4, so no guest stays frozen.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

FIELD = "online"
REQUESTED = "FreezeRequested"
FROZEN = "Frozen"
NOT_FROZEN = "NotFrozen"
THAWED = "Thawed"
FAILED = "Failed"
#: the controller may make the VolumeSnapshots once the agent said one of these
SNAPSHOT_NOW = (FROZEN, NOT_FROZEN)
#: how long a frozen guest waits for its snapshots to be cut before it is thawed
CUT_WITHIN_S = 60.0
CONSISTENT = "filesystems frozen by the guest agent"
CRASH_CONSISTENT = "crash-consistent"


def of(obj: Json) -> Json:
    """The ``status.online`` of a CsiVMSnapshot ({} before any hand-over)."""
    return dict((obj.get("status") or {}).get(FIELD) or {})


def phase(obj: Json) -> str:
    return str(of(obj).get("phase") or "")


def volume_snapshot_name(snapshot: str, disk: str) -> str:
    """The VolumeSnapshot of one disk of a CsiVMSnapshot."""
    return f"{snapshot}-{disk}"


def is_cut(volume_snapshot: Json) -> bool:
    """The CSI snapshot was taken: its point in time has passed, the guest may be thawed."""
    status = volume_snapshot.get("status") or {}
    return bool(status.get("creationTime")) or status.get("readyToUse") is True
