"""CSI Controller service: volume RPCs here, snapshot RPCs in `rpc_snapshots`."""

# ruff: noqa: N802  (method names are fixed by the CSI service definitions)

from __future__ import annotations

import grpc
from google.protobuf import wrappers_pb2

from csi_vm.csi.pb import csi_pb2, csi_pb2_grpc
from csi_vm.localdriver import (
    attach,
    capabilities,
    requests,
    rpc_convert,
    rpc_status,
    volumeops,
    volumes,
)
from csi_vm.localdriver.context import Context
from csi_vm.localdriver.rpc_snapshots import SnapshotHandlers

_RPC = csi_pb2.ControllerServiceCapability.RPC


def _status(
    status: volumeops.VolumeStatus,
) -> tuple[csi_pb2.Volume, list[str], csi_pb2.VolumeCondition]:
    return (
        rpc_convert.volume(status.volume),
        list(status.published_nodes),
        rpc_convert.condition(status.condition),
    )


class Controller(SnapshotHandlers, csi_pb2_grpc.ControllerServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @rpc_status.unary
    def ControllerGetCapabilities(
        self, request: csi_pb2.ControllerGetCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerGetCapabilitiesResponse:
        caps = [
            csi_pb2.ControllerServiceCapability(rpc=_RPC(type=_RPC.Type.Value(name)))
            for name in capabilities.controller_rpcs(self._ctx.config)
        ]
        return csi_pb2.ControllerGetCapabilitiesResponse(capabilities=caps)

    @rpc_status.unary
    def CreateVolume(
        self, request: csi_pb2.CreateVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.CreateVolumeResponse:
        vol = volumes.create(self._ctx, rpc_convert.create_volume(request))
        return csi_pb2.CreateVolumeResponse(volume=rpc_convert.volume(vol))

    @rpc_status.unary
    def DeleteVolume(
        self, request: csi_pb2.DeleteVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.DeleteVolumeResponse:
        volumes.delete(self._ctx, request.volume_id)
        return csi_pb2.DeleteVolumeResponse()

    @rpc_status.unary
    def ControllerPublishVolume(
        self, request: csi_pb2.ControllerPublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerPublishVolumeResponse:
        req = requests.ControllerPublish(
            volume_id=request.volume_id,
            node_id=request.node_id,
            cap=rpc_convert.optional_capability(
                request.HasField("volume_capability"),
                request.volume_capability,
                field="volume_capability",
            ),
            readonly=request.readonly,
        )
        publish_context = attach.publish(self._ctx, req)
        return csi_pb2.ControllerPublishVolumeResponse(publish_context=publish_context)

    @rpc_status.unary
    def ControllerUnpublishVolume(
        self, request: csi_pb2.ControllerUnpublishVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerUnpublishVolumeResponse:
        attach.unpublish(self._ctx, volume_id=request.volume_id, node_id=request.node_id)
        return csi_pb2.ControllerUnpublishVolumeResponse()

    @rpc_status.unary
    def ValidateVolumeCapabilities(
        self, request: csi_pb2.ValidateVolumeCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ValidateVolumeCapabilitiesResponse:
        caps = rpc_convert.capabilities(request.volume_capabilities, field="volume_capabilities")
        problem = volumeops.validate_capabilities(self._ctx, request.volume_id, caps)
        if problem:
            return csi_pb2.ValidateVolumeCapabilitiesResponse(message=problem)
        confirmed = csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
            volume_context=dict(request.volume_context),
            volume_capabilities=list(request.volume_capabilities),
            parameters=dict(request.parameters),
            mutable_parameters=dict(request.mutable_parameters),
        )
        return csi_pb2.ValidateVolumeCapabilitiesResponse(confirmed=confirmed)

    @rpc_status.unary
    def ListVolumes(
        self, request: csi_pb2.ListVolumesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ListVolumesResponse:
        page = volumeops.list_page(
            self._ctx, token=request.starting_token, max_entries=request.max_entries
        )
        entries = []
        for item in page.items:
            vol, nodes, cond = _status(item)
            status = csi_pb2.ListVolumesResponse.VolumeStatus(
                published_node_ids=nodes, volume_condition=cond
            )
            entries.append(csi_pb2.ListVolumesResponse.Entry(volume=vol, status=status))
        return csi_pb2.ListVolumesResponse(entries=entries, next_token=page.next_token)

    @rpc_status.unary
    def ControllerGetVolume(
        self, request: csi_pb2.ControllerGetVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerGetVolumeResponse:
        vol, nodes, cond = _status(volumeops.get(self._ctx, request.volume_id))
        status = csi_pb2.ControllerGetVolumeResponse.VolumeStatus(
            published_node_ids=nodes, volume_condition=cond
        )
        return csi_pb2.ControllerGetVolumeResponse(volume=vol, status=status)

    @rpc_status.unary
    def GetCapacity(
        self, request: csi_pb2.GetCapacityRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetCapacityResponse:
        found = volumeops.capacity(
            self._ctx,
            caps=rpc_convert.capabilities(request.volume_capabilities, field="volume_capabilities"),
            segment=dict(request.accessible_topology.segments)
            if request.HasField("accessible_topology")
            else None,
        )
        return csi_pb2.GetCapacityResponse(
            available_capacity=found.available,
            maximum_volume_size=wrappers_pb2.Int64Value(value=found.maximum),
            minimum_volume_size=wrappers_pb2.Int64Value(value=found.minimum),
        )

    @rpc_status.unary
    def ControllerExpandVolume(
        self, request: csi_pb2.ControllerExpandVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerExpandVolumeResponse:
        req = requests.ExpandVolume(
            volume_id=request.volume_id,
            capacity=rpc_convert.capacity(
                request.HasField("capacity_range"), request.capacity_range
            ),
            cap=rpc_convert.optional_capability(
                request.HasField("volume_capability"),
                request.volume_capability,
                field="volume_capability",
            ),
        )
        size, node_needed = volumeops.expand(self._ctx, req)
        return csi_pb2.ControllerExpandVolumeResponse(
            capacity_bytes=size, node_expansion_required=node_needed
        )

    @rpc_status.unary
    def ControllerModifyVolume(
        self, request: csi_pb2.ControllerModifyVolumeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ControllerModifyVolumeResponse:
        volumeops.modify(self._ctx, request.volume_id, dict(request.mutable_parameters))
        return csi_pb2.ControllerModifyVolumeResponse()
