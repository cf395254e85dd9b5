"""Everything a test creates, undone in reverse order when the test ends.

The ledger is the suite's CO: it creates volumes and snapshots, walks volumes
through controller publish, stage and publish (`nodesteps`), and remembers
each step so teardown can undo it even when the test failed half way. Undo
calls are the spec's idempotent negation calls, so undoing something a test
already undid is itself a conformance check.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import grpc

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .caps import Caps
from .nodesteps import NodeSteps
from .undo import UndoLog

#: How long a snapshot may take to become ready_to_use.
READY_TIMEOUT_S = 60.0


class Ledger(NodeSteps):
    def __init__(self, csi: rpc.Csi, caps: Caps, workdir: Path) -> None:
        self.csi = csi
        self.caps = caps
        self.workdir = workdir
        self.undo = UndoLog()
        self._paths = 0

    # ---- names and paths ------------------------------------------------

    @staticmethod
    def name(kind: str) -> str:
        return f"csi-conformance-{kind}-{uuid.uuid4().hex[:12]}"

    def staging_path(self) -> str:
        """A staging directory; the CO creates it (spec: NodeStageVolume)."""
        self._paths += 1
        path = self.workdir / f"staging-{self._paths}"
        path.mkdir(parents=True)
        return str(path)

    def target_path(self) -> str:
        """A target path whose parent exists; the SP creates the path itself."""
        self._paths += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        return str(self.workdir / f"target-{self._paths}")

    # ---- controller objects ---------------------------------------------

    def track_volume(self, volume_id: str) -> None:
        request = csi_pb2.DeleteVolumeRequest(volume_id=volume_id)
        self.undo.add(
            f"DeleteVolume {volume_id}", lambda: self.csi.controller.DeleteVolume(request)
        )

    def track_snapshot(self, snapshot_id: str) -> None:
        request = csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot_id)
        self.undo.add(
            f"DeleteSnapshot {snapshot_id}", lambda: self.csi.controller.DeleteSnapshot(request)
        )

    def track_group(self, group: csi_pb2.VolumeGroupSnapshot) -> None:
        request = csi_pb2.DeleteVolumeGroupSnapshotRequest(
            group_snapshot_id=group.group_snapshot_id,
            snapshot_ids=[s.snapshot_id for s in group.snapshots],
        )
        self.undo.add(
            f"DeleteVolumeGroupSnapshot {group.group_snapshot_id}",
            lambda: self.csi.group.DeleteVolumeGroupSnapshot(request),
        )

    def create(self, request: csi_pb2.CreateVolumeRequest) -> csi_pb2.Volume:
        """Send a CreateVolume as given and remember the volume it returns."""
        volume: csi_pb2.Volume = self.csi.controller.CreateVolume(request).volume
        self.track_volume(volume.volume_id)
        return volume

    def request(
        self,
        *,
        name: str | None = None,
        size: int | None = None,
        access: str = "mount",
        mode: str = "SINGLE_NODE_WRITER",
        source: csi_pb2.VolumeContentSource | None = None,
    ) -> csi_pb2.CreateVolumeRequest:
        return build.create_request(
            self.caps,
            name or self.name("vol"),
            size=size,
            capabilities=[build.capability(access, mode)],
            source=source,
        )

    def create_volume(
        self,
        *,
        name: str | None = None,
        size: int | None = None,
        access: str = "mount",
        mode: str = "SINGLE_NODE_WRITER",
        source: csi_pb2.VolumeContentSource | None = None,
    ) -> csi_pb2.Volume:
        return self.create(
            self.request(name=name, size=size, access=access, mode=mode, source=source)
        )

    def refuse_create(
        self, request: csi_pb2.CreateVolumeRequest, *codes: grpc.StatusCode
    ) -> rpc.Refusal:
        """Expect CreateVolume to fail; a volume made by mistake is still cleaned up."""
        with rpc.refused(*codes) as refusal:
            self.create(request)
        return refusal

    def snapshot_request(
        self, volume_id: str, name: str | None = None
    ) -> csi_pb2.CreateSnapshotRequest:
        return csi_pb2.CreateSnapshotRequest(
            source_volume_id=volume_id, name=name or self.name("snap")
        )

    def create_snapshot(self, volume_id: str, *, name: str | None = None) -> csi_pb2.Snapshot:
        """Cut a snapshot and wait until it is ready to use (re-issuing CreateSnapshot)."""
        request = self.snapshot_request(volume_id, name)
        snapshot: csi_pb2.Snapshot = self.csi.controller.CreateSnapshot(request).snapshot
        self.track_snapshot(snapshot.snapshot_id)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not snapshot.ready_to_use:
            assert time.monotonic() < deadline, (
                f"snapshot {snapshot.snapshot_id} not ready_to_use after {READY_TIMEOUT_S:.0f} s"
            )
            time.sleep(0.2)
            snapshot = self.csi.controller.CreateSnapshot(request).snapshot
        return snapshot

    def create_group(
        self, volume_ids: list[str], *, name: str | None = None
    ) -> csi_pb2.VolumeGroupSnapshot:
        request = csi_pb2.CreateVolumeGroupSnapshotRequest(
            name=name or self.name("group"), source_volume_ids=volume_ids
        )
        group: csi_pb2.VolumeGroupSnapshot = self.csi.group.CreateVolumeGroupSnapshot(
            request
        ).group_snapshot
        self.track_group(group)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not group.ready_to_use:
            assert time.monotonic() < deadline, (
                f"group snapshot {group.group_snapshot_id} not ready after {READY_TIMEOUT_S:.0f} s"
            )
            time.sleep(0.2)
            group = self.csi.group.CreateVolumeGroupSnapshot(request).group_snapshot
        return group

    # ---- teardown -------------------------------------------------------

    def cleanup(self) -> list[str]:
        """Undo everything, newest first; return what could not be undone."""
        return self.undo.run() + self._leftover_paths()

    def _leftover_paths(self) -> list[str]:
        """Remove the suite's empty directories; report anything still mounted or made."""
        problems: list[str] = []
        if not self.workdir.exists():
            return problems
        for entry in sorted(self.workdir.iterdir()):
            if os.path.ismount(entry):
                problems.append(f"{entry} is still mounted after teardown")
            elif entry.name.startswith("staging-") and entry.is_dir():
                try:
                    entry.rmdir()
                except OSError as err:
                    problems.append(f"staging directory {entry} not empty after unstage: {err}")
            elif entry.name.startswith("target-"):
                # The SP creates the target path and must delete it on unpublish.
                problems.append(f"target path {entry} left behind after NodeUnpublishVolume")
                if entry.is_dir():
                    entry.rmdir()
                else:
                    entry.unlink()
        if not problems:
            self.workdir.rmdir()
        return problems
