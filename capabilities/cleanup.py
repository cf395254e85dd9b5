"""Remove what an interrupted probe left on a driver.

Two sources: the probe journals (written before every create, so even a kill
-9 right after a create is covered), and the driver's own listing, for
drivers that put the object name into volume ids or volume context.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from capabilities import session, tracker
from csi_vm import errors
from csi_vm.csi import client as csi_client
from csi_vm.csi import endpoint as endpoint_mod
from csi_vm.csi import models


@dataclasses.dataclass(kw_only=True)
class Outcome:
    removed: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    journals: int = 0


def run(endpoint: str, *, journal_dir: pathlib.Path, timeout: float = 10.0) -> Outcome:
    outcome = Outcome()
    target = endpoint_mod.to_target(endpoint)
    with csi_client.Client(endpoint, timeout=timeout) as controller:
        nodes: dict[str, csi_client.Client] = {}
        for path in tracker.journals(journal_dir):
            recorded, entries = tracker.pending(path)
            if not recorded or endpoint_mod.to_target(recorded) != target:
                continue
            outcome.journals += 1
            if _replay(controller, nodes, entries, outcome):
                path.unlink(missing_ok=True)
        _sweep_listing(controller, outcome)
        for node in nodes.values():
            node.close()
    return outcome


def _replay(
    controller: csi_client.Client,
    nodes: dict[str, csi_client.Client],
    entries: list[tracker.Entry],
    outcome: Outcome,
) -> bool:
    clean = True
    for entry in entries:
        try:
            object_id = entry.object_id or _find(controller, entry)
            if object_id:
                session.remove_object(controller, nodes, entry.kind, object_id, entry.spec)
                outcome.removed.append(f"{entry.kind} {object_id} ({entry.name})")
        except errors.NotFound:
            continue  # its volume is gone, and with it every stage and publish
        except errors.CsiVmError as err:
            clean = False
            outcome.failed.append(f"{entry.kind} {entry.name}: {err}")
    return clean


def _find(controller: csi_client.Client, entry: tracker.Entry) -> str:
    """The id of an object whose create was sent but not answered.

    CSI creates are idempotent by name: asking again returns the existing
    object, or makes it (and it is deleted right after).
    """
    spec = entry.spec
    try:
        if entry.kind == "volume":
            return _recreate_volume(controller, entry.name, spec)
        if entry.kind == "snapshot":
            return controller.create_snapshot(spec["source_volume_id"], name=entry.name).snapshot_id
        if entry.kind == "group_snapshot":
            group = controller.create_group_snapshot(tuple(spec["volume_ids"]), name=entry.name)
            spec["snapshot_ids"] = [s.snapshot_id for s in group.snapshots]
            return group.group_snapshot_id
    except (errors.NotFound, errors.Unsupported):
        return ""  # its source is gone, so it cannot exist either
    if entry.kind in ("stage", "publish"):
        return str(spec["volume_id"])
    return ""


def _recreate_volume(controller: csi_client.Client, name: str, spec: dict[str, Any]) -> str:
    capability = models.VolumeCapability.model_validate(spec["capability"])
    source: models.ContentSource | None = None
    if "source_volume_id" in spec:
        source = models.VolumeSource(volume_id=spec["source_volume_id"])
    elif "source_snapshot_id" in spec:
        source = models.SnapshotSource(snapshot_id=spec["source_snapshot_id"])
    vol = controller.create_volume(
        name, size=spec["size"], capabilities=(capability,), source=source
    )
    return vol.volume_id


def _sweep_listing(controller: csi_client.Client, outcome: Outcome) -> None:
    try:
        entries = list(controller.list_volumes())
    except errors.Unsupported:
        return
    for entry in entries:
        vol = entry.volume
        named = [vol.volume_id, *vol.volume_context.values()]
        if any(str(v).startswith(tracker.PREFIX) for v in named):
            try:
                controller.delete_volume(vol.volume_id)
                outcome.removed.append(f"volume {vol.volume_id} (found by name prefix)")
            except errors.CsiVmError as err:
                outcome.failed.append(f"volume {vol.volume_id}: {err}")
