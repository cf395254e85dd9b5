"""Full listings of volumes and snapshots, walking every page."""

from __future__ import annotations

from csi_vm.csi.pb import csi_pb2

from . import rpc


def list_volume_ids(csi: rpc.Csi) -> set[str]:
    ids: set[str] = set()
    token = ""
    while True:
        page = csi.controller.ListVolumes(csi_pb2.ListVolumesRequest(starting_token=token))
        ids.update(entry.volume.volume_id for entry in page.entries)
        token = page.next_token
        if not token:
            return ids


def list_snapshot_ids(csi: rpc.Csi) -> set[str]:
    ids: set[str] = set()
    token = ""
    while True:
        page = csi.controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(starting_token=token))
        ids.update(entry.snapshot.snapshot_id for entry in page.entries)
        token = page.next_token
        if not token:
            return ids
