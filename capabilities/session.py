"""A probe session: creates test objects through the CSI client and removes them all.

Everything a check creates goes through this class, which journals it first
(`tracker.Journal`) and keeps a stack for cleanup in reverse order.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from typing import Any

from capabilities import tracker
from csi_vm import errors
from csi_vm.csi import client as csi_client
from csi_vm.csi import models

log = logging.getLogger("csi_vm.probe")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Made:
    kind: str
    name: str
    object_id: str
    spec: dict[str, Any]


def cap(mode: models.VolumeMode, access: models.AccessMode) -> models.VolumeCapability:
    fs_type = "" if mode is models.VolumeMode.BLOCK else "ext4"
    return models.VolumeCapability(mode=mode, access=access, fs_type=fs_type)


class Session:
    """Creates probe objects on one driver and guarantees their removal."""

    def __init__(
        self,
        *,
        controller: csi_client.Client,
        nodes: dict[str, csi_client.Client],
        journal: tracker.Journal,
        work_dir: pathlib.Path,
    ) -> None:
        self.controller = controller
        self.nodes = nodes
        self.journal = journal
        self.work_dir = work_dir
        self._stack: list[Made] = []
        self.leftovers: list[str] = []

    # -- controller objects ---------------------------------------------------

    def volume(
        self,
        what: str,
        *,
        size: int,
        capability: models.VolumeCapability,
        source: models.ContentSource | None = None,
    ) -> models.Volume:
        name = self.journal.name(what)
        spec = _volume_spec(size, capability, source)
        self.journal.intent(kind="volume", name=name, spec=spec)
        vol = self.controller.create_volume(
            name, size=size, capabilities=(capability,), source=source
        )
        self._made(Made(kind="volume", name=name, object_id=vol.volume_id, spec=spec))
        return vol

    def snapshot(self, what: str, *, volume_id: str) -> models.Snapshot:
        name = self.journal.name(what)
        spec = {"source_volume_id": volume_id}
        self.journal.intent(kind="snapshot", name=name, spec=spec)
        snap = self.controller.create_snapshot(volume_id, name=name)
        self._made(Made(kind="snapshot", name=name, object_id=snap.snapshot_id, spec=spec))
        return snap

    def group_snapshot(self, what: str, *, volume_ids: tuple[str, ...]) -> models.GroupSnapshot:
        name = self.journal.name(what)
        spec: dict[str, Any] = {"volume_ids": list(volume_ids)}
        self.journal.intent(kind="group_snapshot", name=name, spec=spec)
        group = self.controller.create_group_snapshot(volume_ids, name=name)
        spec = {**spec, "snapshot_ids": [s.snapshot_id for s in group.snapshots]}
        self._made(
            Made(kind="group_snapshot", name=name, object_id=group.group_snapshot_id, spec=spec)
        )
        return group

    # -- node objects ---------------------------------------------------------

    def stage(self, node: str, *, volume_id: str, capability: models.VolumeCapability) -> str:
        path = self._path("staging", node, volume_id)
        spec = {
            "node": node,
            "volume_id": volume_id,
            "path": path,
            "endpoint": self.nodes[node].endpoint,
        }
        name = f"{node}:{volume_id}"
        self.journal.intent(kind="stage", name=name, spec=spec)
        self.nodes[node].node_stage(volume_id, staging_path=path, capability=capability)
        self._made(Made(kind="stage", name=name, object_id=volume_id, spec=spec))
        return path

    def publish(
        self,
        node: str,
        *,
        volume_id: str,
        capability: models.VolumeCapability,
        staging_path: str = "",
    ) -> str:
        path = self._path("target", node, volume_id)
        if capability.mode is models.VolumeMode.FILESYSTEM:
            pathlib.Path(path).mkdir(parents=True, exist_ok=True)
        spec = {
            "node": node,
            "volume_id": volume_id,
            "path": path,
            "endpoint": self.nodes[node].endpoint,
        }
        name = f"{node}:{volume_id}"
        self.journal.intent(kind="publish", name=name, spec=spec)
        self.nodes[node].node_publish(
            volume_id, target_path=path, capability=capability, staging_path=staging_path
        )
        self._made(Made(kind="publish", name=name, object_id=volume_id, spec=spec))
        return path

    def _path(self, kind: str, node: str, volume_id: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in volume_id)[:80]
        path = self.work_dir / node / kind / safe
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    # -- removal --------------------------------------------------------------

    def _made(self, made: Made) -> None:
        self._stack.append(made)
        self.journal.created(
            kind=made.kind, name=made.name, object_id=made.object_id, spec=made.spec
        )

    def remove(self, kind: str, object_id: str) -> None:
        """Remove one object now (and everything made on top of it after it)."""
        for made in reversed(list(self._stack)):
            if made.kind == kind and made.object_id == object_id:
                self._remove_one(made)
                return

    def unpublish_all(self) -> None:
        """Undo every node publish and stage, newest first (needed before expansion tests)."""
        for made in reversed(list(self._stack)):
            if made.kind in ("publish", "stage"):
                self._remove_one(made)

    def cleanup(self) -> None:
        """Remove everything, newest first; what cannot be removed is reported."""
        while self._stack:
            made = self._stack[-1]
            try:
                self._remove_one(made)
            except errors.CsiVmError as err:
                self._stack.pop()
                self.leftovers.append(f"{made.kind} {made.object_id} ({made.name}): {err}")
        if not self.leftovers:
            self.journal.finish()

    def _remove_one(self, made: Made) -> None:
        remove_object(self.controller, self.nodes, made.kind, made.object_id, made.spec)
        self._stack.remove(made)
        self.journal.removed(kind=made.kind, name=made.name)


def remove_object(
    controller: csi_client.Client,
    nodes: dict[str, csi_client.Client],
    kind: str,
    object_id: str,
    spec: dict[str, Any],
) -> None:
    """Delete one probe object; every call here is idempotent in CSI."""
    if kind == "publish":
        _node(nodes, spec).node_unpublish(object_id, target_path=spec["path"])
    elif kind == "stage":
        _node(nodes, spec).node_unstage(object_id, staging_path=spec["path"])
    elif kind == "snapshot":
        controller.delete_snapshot(object_id)
    elif kind == "group_snapshot":
        controller.delete_group_snapshot(
            object_id, snapshot_ids=tuple(spec.get("snapshot_ids", ()))
        )
    elif kind == "volume":
        controller.delete_volume(object_id)


def _node(nodes: dict[str, csi_client.Client], spec: dict[str, Any]) -> csi_client.Client:
    node = nodes.get(spec["node"])
    if node is None:
        # A journal replayed by `cleanup` names the node's endpoint itself.
        node = csi_client.Client(spec["endpoint"])
        nodes[spec["node"]] = node
    return node


def _volume_spec(
    size: int, capability: models.VolumeCapability, source: models.ContentSource | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"size": size, "capability": capability.model_dump(mode="json")}
    if isinstance(source, models.VolumeSource):
        spec["source_volume_id"] = source.volume_id
    elif isinstance(source, models.SnapshotSource):
        spec["source_snapshot_id"] = source.snapshot_id
    return spec
