"""CSI Node service."""

# ruff: noqa: N802  (method names are fixed by the CSI service definitions)

from __future__ import annotations

import grpc

from csi_vm.csi.pb import csi_pb2, csi_pb2_grpc
from csi_vm.localdriver import (
    capabilities,
    node,
    nodeinfo,
    publish,
    requests,
    rpc_convert,
    rpc_status,
)
from csi_vm.localdriver.context import Context

_RPC = csi_pb2.NodeServiceCapability.RPC
_Unit = csi_pb2.VolumeUsage.Unit


def _usage(usage: nodeinfo.Usage, unit: csi_pb2.VolumeUsage.Unit.ValueType) -> csi_pb2.VolumeUsage:
    return csi_pb2.VolumeUsage(
        total=usage.total, available=usage.available, used=usage.used, unit=unit
    )


class Node(csi_pb2_grpc.NodeServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @rpc_status.unary
    def NodeGetCapabilities(
        self, request: csi_pb2.NodeGetCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeGetCapabilitiesResponse:
        caps = [
            csi_pb2.NodeServiceCapability(rpc=_RPC(type=_RPC.Type.Value(name)))
            for name in capabilities.node_rpcs(self._ctx.config)
        ]
        return csi_pb2.NodeGetCapabilitiesResponse(capabilities=caps)

    @rpc_status.unary
    def NodeGetInfo(
        self, request: csi_pb2.NodeGetInfoRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeGetInfoResponse:
        response = csi_pb2.NodeGetInfoResponse(node_id=self._ctx.config.node_id)
        if segment := self._ctx.segment():
            response.accessible_topology.segments.update(segment)
        return response

    @rpc_status.unary
    def NodeStageVolume(
        self, request: csi_pb2.NodeStageVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeStageVolumeResponse:
        req = requests.Stage(
            volume_id=request.volume_id,
            staging_path=request.staging_target_path,
            cap=rpc_convert.optional_capability(
                request.HasField("volume_capability"),
                request.volume_capability,
                field="volume_capability",
            ),
        )
        node.stage(self._ctx, req)
        return csi_pb2.NodeStageVolumeResponse()

    @rpc_status.unary
    def NodeUnstageVolume(
        self, request: csi_pb2.NodeUnstageVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeUnstageVolumeResponse:
        node.unstage(
            self._ctx, volume_id=request.volume_id, staging_path=request.staging_target_path
        )
        return csi_pb2.NodeUnstageVolumeResponse()

    @rpc_status.unary
    def NodePublishVolume(
        self, request: csi_pb2.NodePublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodePublishVolumeResponse:
        req = requests.Publish(
            volume_id=request.volume_id,
            staging_path=request.staging_target_path,
            target_path=request.target_path,
            cap=rpc_convert.optional_capability(
                request.HasField("volume_capability"),
                request.volume_capability,
                field="volume_capability",
            ),
            readonly=request.readonly,
        )
        publish.publish(self._ctx, req)
        return csi_pb2.NodePublishVolumeResponse()

    @rpc_status.unary
    def NodeUnpublishVolume(
        self, request: csi_pb2.NodeUnpublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeUnpublishVolumeResponse:
        publish.unpublish(self._ctx, volume_id=request.volume_id, target_path=request.target_path)
        return csi_pb2.NodeUnpublishVolumeResponse()

    @rpc_status.unary
    def NodeGetVolumeStats(
        self, request: csi_pb2.NodeGetVolumeStatsRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeGetVolumeStatsResponse:
        found = nodeinfo.stats(
            self._ctx, volume_id=request.volume_id, volume_path=request.volume_path
        )
        usage = [_usage(found.bytes, _Unit.BYTES)]
        if found.inodes is not None:
            usage.append(_usage(found.inodes, _Unit.INODES))
        return csi_pb2.NodeGetVolumeStatsResponse(
            usage=usage, volume_condition=rpc_convert.condition(found.condition)
        )

    @rpc_status.unary
    def NodeExpandVolume(
        self, request: csi_pb2.NodeExpandVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.NodeExpandVolumeResponse:
        req = requests.NodeExpand(
            volume_id=request.volume_id,
            volume_path=request.volume_path,
            capacity=rpc_convert.capacity(
                request.HasField("capacity_range"), request.capacity_range
            ),
            cap=rpc_convert.optional_capability(
                request.HasField("volume_capability"),
                request.volume_capability,
                field="volume_capability",
            ),
        )
        size = nodeinfo.expand(self._ctx, req)
        return csi_pb2.NodeExpandVolumeResponse(capacity_bytes=size)
