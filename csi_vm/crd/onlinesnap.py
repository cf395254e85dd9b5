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


# -- push backup: a running VM on a class without CSI snapshots ------------------------
#
# The controller makes the snapshot's claim of each such disk and a holder
# Pod for it on the VM's node, so the kubelet publishes the claim there, and
# asks: ``status.onlineBackup`` BackupRequested. The agent makes a device
# node of the published device in the launcher's run directory (the only
# node directory the launcher's libvirt sees), and has libvirt back the
# running guest up into it (frozen around the start when it has a guest
# agent: a backup's point in time is its start); it removes the device
# nodes and says BackedUp, or BackupFailed. The controller then deletes the
# holder Pods, and after a failure the claims too.

BACKUP_FIELD = "onlineBackup"
BACKUP_REQUESTED = "BackupRequested"
BACKED_UP = "BackedUp"
BACKUP_FAILED = "BackupFailed"
#: the plan's strategy of a disk without CSI snapshots (an offline host copy),
#: and what a running VM's such disk takes instead
HOST_COPY, PUSH_BACKUP = "host-copy", "push-backup"
COPIES = (HOST_COPY, PUSH_BACKUP)
PUSH_BACKUP_REASON = (
    "no CSI snapshots on the class and the VM runs: libvirt push backup of the running "
    "guest into a new claim, the disk as it was when the backup began"
)


def backup(obj: Json) -> Json:
    """The ``status.onlineBackup`` of a CsiVMSnapshot ({} before any)."""
    return dict((obj.get("status") or {}).get(BACKUP_FIELD) or {})


def backup_holder(claim: str) -> str:
    """The Pod that has the kubelet publish a backup's claim on the VM's node."""
    return f"{claim}-holder"


def backup_device(target: str) -> str:
    """The device node of a backup's claim in the launcher's run directory."""
    return f"backup-{target}"
