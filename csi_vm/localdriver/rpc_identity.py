"""CSI Identity service: who the driver is, what it offers, whether it is ready."""

# ruff: noqa: N802  (method names are fixed by the CSI service definitions)

from __future__ import annotations

import importlib.metadata

import grpc
from google.protobuf import wrappers_pb2

from csi_vm.csi.pb import csi_pb2, csi_pb2_grpc
from csi_vm.localdriver import capabilities, rpc_status
from csi_vm.localdriver import config as driver_config
from csi_vm.localdriver.context import Context

#: Plugin name, in the domain notation CSI requires (63 characters at most).
PLUGIN_NAME = driver_config.DEFAULT_DRIVER_NAME

_Service = csi_pb2.PluginCapability.Service
_Expansion = csi_pb2.PluginCapability.VolumeExpansion


def _version() -> str:
    try:
        return importlib.metadata.version("csi-vm")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


class Identity(csi_pb2_grpc.IdentityServicer):
    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    @rpc_status.unary
    def GetPluginInfo(
        self, request: csi_pb2.GetPluginInfoRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetPluginInfoResponse:
        cfg = self._ctx.config
        manifest = {
            "node-id": cfg.node_id,
            "storage": "node-local" if cfg.pinned or not cfg.shared else "shared",
            "without": ",".join(sorted(cfg.without)),
        }
        return csi_pb2.GetPluginInfoResponse(
            name=cfg.driver_name, vendor_version=_version(), manifest=manifest
        )

    @rpc_status.unary
    def GetPluginCapabilities(
        self, request: csi_pb2.GetPluginCapabilitiesRequest, context: grpc.ServicerContext
    ) -> csi_pb2.GetPluginCapabilitiesResponse:
        config = self._ctx.config
        caps = [
            csi_pb2.PluginCapability(service=_Service(type=_Service.Type.Value(name)))
            for name in capabilities.plugin_services(config)
        ]
        if expansion := capabilities.volume_expansion(config):
            caps.append(
                csi_pb2.PluginCapability(
                    volume_expansion=_Expansion(type=_Expansion.Type.Value(expansion))
                )
            )
        return csi_pb2.GetPluginCapabilitiesResponse(capabilities=caps)

    @rpc_status.unary
    def Probe(
        self, request: csi_pb2.ProbeRequest, context: grpc.ServicerContext
    ) -> csi_pb2.ProbeResponse:
        with self._ctx.db.read() as cur:  # the state file answers: the driver can work
            cur.execute("SELECT 1").fetchone()
        return csi_pb2.ProbeResponse(ready=wrappers_pb2.BoolValue(value=True))
