"""Making one disk from another: restore from a snapshot, clone from a disk.

A native clone or restore is looked at before it counts (see `verify`): a
clone must hold its source's data (sampled; every block with `full`), a
restored volume at least the whole disk and the blocks sampled when its
snapshot was taken. A restore has no source left to compare in full, so no
`--verify`; a snapshot recorded without samples (taken online, where its disk
kept changing, or by an older csi-vm) is restored with the size check only,
and its plan says so.
"""

from __future__ import annotations

import dataclasses

from csi_vm import errors
from csi_vm.flows import context, engine, plans, verify, volume_steps
from csi_vm.store import records

After = list[tuple[str, dict[str, object]]]


def restore_plan(env: context.Env, sd: records.SnapshotDisk) -> plans.DiskPlan:
    if sd.strategy == "host-copy":
        return plans.DiskPlan(
            disk=sd.disk,
            driver=sd.driver,
            strategy="host-copy",
            reason="the snapshot is a host copy: copy its volume into a new one",
        )
    p = plans.disk_plan(env, disk=sd.disk, driver=sd.driver, operation="vm_restore")
    if p.strategy != "csi-restore":
        return p
    checked = (
        "checked for size and against the blocks sampled when the snapshot was taken"
        if sd.fingerprint
        else "checked for size only: the snapshot was recorded without samples of its data"
    )
    return dataclasses.replace(p, reason=f"{p.reason}; {checked}")


def restore(
    flow: engine.Flow, sd: records.SnapshotDisk, *, strategy: str, what: str
) -> volume_steps.Vol:
    if strategy == "csi-restore":
        new = _filled(flow, sd, what=what, source_snapshot_id=sd.object_id)
        answer = "the volume restored"
        verify.whole(flow, new, what=what, answer=answer, fingerprint=sd.fingerprint)
        return new
    if strategy == "host-copy" and sd.strategy == "host-copy":
        src = volume_steps.Vol(driver=sd.driver, volume_id=sd.object_id, mode=sd.mode, size=sd.size)
        return volume_steps.host_copy(
            flow, what=what, src=src, driver=sd.driver, size=sd.size, mode=sd.mode
        )
    raise errors.Unsupported(
        f"snapshot disk {sd.disk!r} is a CSI snapshot, "
        f"but driver {sd.driver!r} cannot create volumes from snapshots",
        hint="a CSI snapshot's data can only be read by restoring it",
    )


def _filled(
    flow: engine.Flow,
    like: records.Disk | records.SnapshotDisk,
    *,
    what: str,
    source_volume_id: str = "",
    source_snapshot_id: str = "",
) -> volume_steps.Vol:
    """A new volume of `like`'s driver, size and mode, filled by the driver from a source."""
    return volume_steps.new_volume(
        flow,
        what=what,
        driver=like.driver,
        size=like.size,
        mode=like.mode,
        source_volume_id=source_volume_id,
        source_snapshot_id=source_snapshot_id,
    )


def clone_plan(env: context.Env, disk: records.Disk) -> plans.DiskPlan:
    return plans.disk_plan(env, disk=disk.name, driver=disk.driver, operation="vm_clone")


def clone(
    flow: engine.Flow,
    disk: records.Disk,
    *,
    strategy: str,
    what: str,
    after: After,
    full: bool = False,
) -> volume_steps.Vol:
    """A new volume with the disk's content; the source is only read.

    A temporary snapshot (snapshot-restore) is removed after the commit.
    """
    src = volume_steps.Vol(
        driver=disk.driver, volume_id=disk.volume_id, mode=disk.mode, size=disk.size
    )
    if strategy == "csi-clone":
        new = _filled(flow, disk, what=what, source_volume_id=disk.volume_id)
        verify.same_data(flow, src=src, new=new, what=what, answer="the clone ready", full=full)
        return new
    if strategy == "snapshot-restore":
        snap_id = volume_steps.snapshot(
            flow, what=f"tmp-{what}", driver=disk.driver, volume_id=disk.volume_id
        )
        after.append(("delete_snapshot", {"driver": disk.driver, "snapshot_id": snap_id}))
        new = _filled(flow, disk, what=what, source_snapshot_id=snap_id)
        answer = "a snapshot and a volume restored from it"
        verify.same_data(flow, src=src, new=new, what=what, answer=answer, full=full)
        return new
    return volume_steps.host_copy(
        flow, what=what, src=src, driver=disk.driver, size=disk.size, mode=disk.mode
    )
