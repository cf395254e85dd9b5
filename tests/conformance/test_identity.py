"""Identity service: plugin info, plugin capabilities, probe."""

from __future__ import annotations

import re

import pytest

from csi_vm.csi.pb import csi_pb2

from . import rpc
from .caps import Caps

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

# Spec: domain-name notation, at most 63 characters, alphanumeric at both ends
# with dashes, dots and alphanumerics between.
PLUGIN_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$")

ENDPOINTS = pytest.mark.parametrize("side", ["controller", "node"], ids=["controller", "node"])


def _identity(csi: rpc.Csi, side: str) -> rpc.Service:
    return csi.identity if side == "controller" else csi.node_identity


@ENDPOINTS
def test_plugin_info_has_valid_name_and_version(csi: rpc.Csi, side: str) -> None:
    info = _identity(csi, side).GetPluginInfo(csi_pb2.GetPluginInfoRequest())
    assert PLUGIN_NAME.match(info.name), f"plugin name {info.name!r} is not a valid CSI name"
    assert info.vendor_version.strip(), "vendor_version is required and empty"


def test_controller_and_node_endpoints_agree(csi: rpc.Csi) -> None:
    """All instances of one plugin version report the same identity and capabilities."""
    infos = [
        service.GetPluginInfo(csi_pb2.GetPluginInfoRequest())
        for service in (csi.identity, csi.node_identity)
    ]
    assert infos[0].name == infos[1].name
    assert infos[0].vendor_version == infos[1].vendor_version
    capabilities = [
        sorted(
            c.SerializeToString(deterministic=True)
            for c in service.GetPluginCapabilities(
                csi_pb2.GetPluginCapabilitiesRequest()
            ).capabilities
        )
        for service in (csi.identity, csi.node_identity)
    ]
    assert capabilities[0] == capabilities[1]


@ENDPOINTS
def test_plugin_capabilities_are_known_values(csi: rpc.Csi, side: str) -> None:
    answer = _identity(csi, side).GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest())
    service_types = csi_pb2.PluginCapability.Service.Type
    expansion_types = csi_pb2.PluginCapability.VolumeExpansion.Type
    for capability in answer.capabilities:
        kind = capability.WhichOneof("type")
        assert kind in ("service", "volume_expansion"), f"capability without a type: {capability}"
        if kind == "service":
            assert capability.service.type in service_types.values()
            assert capability.service.type != service_types.Value("UNKNOWN")
        else:
            assert capability.volume_expansion.type in expansion_types.values()
            assert capability.volume_expansion.type != expansion_types.Value("UNKNOWN")


@ENDPOINTS
def test_probe_answers_ready(csi: rpc.Csi, side: str) -> None:
    answer = _identity(csi, side).Probe(csi_pb2.ProbeRequest())
    # An unset `ready` means ready; a driver still initialising would say False,
    # and every other test here would be meaningless.
    if answer.HasField("ready"):
        assert answer.ready.value, "driver reports it is not ready"


def test_capability_sets_hold_no_unknown_values(caps: Caps) -> None:
    for group in (caps.services, caps.expansion, caps.controller, caps.node, caps.group):
        unknown = sorted(name for name in group if name.startswith("UNKNOWN"))
        assert not unknown, f"capabilities outside the spec: {unknown}"
