"""NodeGetInfo and NodeGetCapabilities."""

from __future__ import annotations

import re

import pytest

from csi_vm.csi.pb import csi_pb2

from . import rpc
from .caps import Caps

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

# Spec: topology key = optional DNS-style prefix + "/" + name of up to 63
# characters, alphanumeric at both ends; values likewise up to 63 characters.
TOPOLOGY_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")
TOPOLOGY_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def test_node_info_identifies_the_node(csi: rpc.Csi) -> None:
    info = csi.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    assert info.node_id, "node_id is required"
    assert len(info.node_id.encode()) <= 256, "node_id longer than 256 bytes"
    assert info.max_volumes_per_node >= 0


def test_node_info_is_stable(csi: rpc.Csi) -> None:
    first = csi.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    second = csi.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest())
    assert first == second


def test_node_topology_keys_and_values_are_valid(caps: Caps) -> None:
    if not caps.node_topology:
        pytest.skip("the node reports no topology")
    prefixes = set()
    for key, value in caps.node_topology.items():
        prefix, _, name = key.rpartition("/")
        if prefix:
            prefixes.add(prefix)
            assert TOPOLOGY_PREFIX.match(prefix), f"topology key prefix {prefix!r} is invalid"
        assert TOPOLOGY_NAME.match(name), f"topology key name {name!r} is invalid"
        assert TOPOLOGY_NAME.match(value), f"topology value {value!r} is invalid"
    assert len(prefixes) <= 1, f"topology keys use several prefixes: {sorted(prefixes)}"


def test_node_capabilities_are_known_values(csi: rpc.Csi) -> None:
    answer = csi.node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
    known = csi_pb2.NodeServiceCapability.RPC.Type
    for capability in answer.capabilities:
        assert capability.WhichOneof("type") == "rpc", f"capability without a type: {capability}"
        assert capability.rpc.type in known.values()
        assert capability.rpc.type != known.Value("UNKNOWN")


def test_controller_capabilities_are_known_values(csi: rpc.Csi, caps: Caps) -> None:
    if not caps.service_has("CONTROLLER_SERVICE"):
        pytest.skip("the plugin has no controller service")
    answer = csi.controller.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
    known = csi_pb2.ControllerServiceCapability.RPC.Type
    for capability in answer.capabilities:
        assert capability.WhichOneof("type") == "rpc", f"capability without a type: {capability}"
        assert capability.rpc.type in known.values()
        assert capability.rpc.type != known.Value("UNKNOWN")
