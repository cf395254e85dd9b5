"""CSI GroupController and SnapshotMetadata services."""

# ruff: noqa: N802  (method names are fixed by the CSI service definitions)

from __future__ import annotations

from collections.abc import Iterator

import grpc

from csi_vm.csi.pb import csi_pb2, csi_pb2_grpc
from csi_vm.localdriver import (
    capabilities,
    groups,
    metadata,
    policy,
    requests,
    rpc_convert,
    rpc_status,
)
from csi_vm.localdriver.config import Feature
from csi_vm.localdriver.context import Context

_RPC = csi_pb2.GroupControllerServiceCapability.RPC


class GroupController(csi_pb2_grpc.GroupControllerServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @rpc_status.unary
    def GroupControllerGetCapabilities(
        self,
        request: csi_pb2.GroupControllerGetCapabilitiesRequest,
        context: grpc.ServicerContext,
    ) -> csi_pb2.GroupControllerGetCapabilitiesResponse:
        # Without group snapshots the whole service is absent (UNIMPLEMENTED),
        # as in a driver that never had it.
        policy.require(self._ctx.config, Feature.GROUP_SNAPSHOT, rpc="GroupController")
        caps = [
            csi_pb2.GroupControllerServiceCapability(rpc=_RPC(type=_RPC.Type.Value(name)))
            for name in capabilities.group_rpcs(self._ctx.config)
        ]
        return csi_pb2.GroupControllerGetCapabilitiesResponse(capabilities=caps)

    @rpc_status.unary
    def CreateVolumeGroupSnapshot(
        self, request: csi_pb2.CreateVolumeGroupSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.CreateVolumeGroupSnapshotResponse:
        req = requests.CreateGroup(
            name=request.name,
            source_volume_ids=tuple(request.source_volume_ids),
            parameters=dict(request.parameters),
        )
        group = groups.create(self._ctx, req)
        return csi_pb2.CreateVolumeGroupSnapshotResponse(group_snapshot=rpc_convert.group(group))

    @rpc_status.unary
    def DeleteVolumeGroupSnapshot(
        self, request: csi_pb2.DeleteVolumeGroupSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.DeleteVolumeGroupSnapshotResponse:
        groups.delete(self._ctx, request.group_snapshot_id, tuple(request.snapshot_ids))
        return csi_pb2.DeleteVolumeGroupSnapshotResponse()

    @rpc_status.unary
    def GetVolumeGroupSnapshot(
        self, request: csi_pb2.GetVolumeGroupSnapshotRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetVolumeGroupSnapshotResponse:
        group = groups.get(self._ctx, request.group_snapshot_id, tuple(request.snapshot_ids))
        return csi_pb2.GetVolumeGroupSnapshotResponse(group_snapshot=rpc_convert.group(group))


_VARIABLE = csi_pb2.BlockMetadataType.VARIABLE_LENGTH


def _blocks(batch: list[tuple[int, int]]) -> list[csi_pb2.BlockMetadata]:
    return [csi_pb2.BlockMetadata(byte_offset=o, size_bytes=n) for o, n in batch]


class SnapshotMetadata(csi_pb2_grpc.SnapshotMetadataServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @rpc_status.streaming
    def GetMetadataAllocated(
        self, request: csi_pb2.GetMetadataAllocatedRequest, context: grpc.ServicerContext
    ) -> Iterator[csi_pb2.GetMetadataAllocatedResponse]:
        stream = metadata.allocated(
            self._ctx,
            snapshot_id=request.snapshot_id,
            offset=request.starting_offset,
            max_results=request.max_results,
        )
        for batch in stream.batches:
            yield csi_pb2.GetMetadataAllocatedResponse(
                block_metadata_type=_VARIABLE,
                volume_capacity_bytes=stream.capacity,
                block_metadata=_blocks(batch),
            )

    @rpc_status.streaming
    def GetMetadataDelta(
        self, request: csi_pb2.GetMetadataDeltaRequest, context: grpc.ServicerContext
    ) -> Iterator[csi_pb2.GetMetadataDeltaResponse]:
        stream = metadata.delta(
            self._ctx,
            base_id=request.base_snapshot_id,
            target_id=request.target_snapshot_id,
            offset=request.starting_offset,
            max_results=request.max_results,
        )
        for batch in stream.batches:
            yield csi_pb2.GetMetadataDeltaResponse(
                block_metadata_type=_VARIABLE,
                volume_capacity_bytes=stream.capacity,
                block_metadata=_blocks(batch),
            )
