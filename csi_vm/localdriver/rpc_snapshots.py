"""Controller snapshot RPCs (CreateSnapshot, DeleteSnapshot, ListSnapshots, GetSnapshot).

A mixin of the Controller servicer (`rpc_controller`), kept apart to keep
modules small.
"""

# ruff: noqa: N802  (method names are fixed by the CSI service definitions)

from __future__ import annotations

import grpc

from csi_vm.csi.pb import csi_pb2
from csi_vm.localdriver import rpc_convert, rpc_status, snapshots
from csi_vm.localdriver.context import Context


class SnapshotHandlers:
    _ctx: Context

    @rpc_status.unary
    def CreateSnapshot(
        self, request: csi_pb2.CreateSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.CreateSnapshotResponse:
        snap = snapshots.create(
            self._ctx,
            name=request.name,
            source_volume_id=request.source_volume_id,
            parameters=dict(request.parameters),
        )
        return csi_pb2.CreateSnapshotResponse(snapshot=rpc_convert.snapshot(snap))

    @rpc_status.unary
    def DeleteSnapshot(
        self, request: csi_pb2.DeleteSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.DeleteSnapshotResponse:
        snapshots.delete(self._ctx, request.snapshot_id)
        return csi_pb2.DeleteSnapshotResponse()

    @rpc_status.unary
    def ListSnapshots(
        self, request: csi_pb2.ListSnapshotsRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ListSnapshotsResponse:
        page = snapshots.list_page(
            self._ctx,
            token=request.starting_token,
            max_entries=request.max_entries,
            source_volume_id=request.source_volume_id,
            snapshot_id=request.snapshot_id,
        )
        entries = [
            csi_pb2.ListSnapshotsResponse.Entry(snapshot=rpc_convert.snapshot(s))
            for s in page.items
        ]
        return csi_pb2.ListSnapshotsResponse(entries=entries, next_token=page.next_token)

    @rpc_status.unary
    def GetSnapshot(
        self, request: csi_pb2.GetSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetSnapshotResponse:
        snap = snapshots.get(self._ctx, request.snapshot_id)
        return csi_pb2.GetSnapshotResponse(snapshot=rpc_convert.snapshot(snap))
