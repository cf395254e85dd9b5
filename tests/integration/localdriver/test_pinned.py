"""--shared --pin-volumes: one state dir for two nodes, yet each volume lives on one.

What a driver of node-local disks with one controller does: CreateVolume
places the volume on the node its accessibility requirements prefer, the
volume carries that node's topology, and neither attach nor the other node's
node plugin lets another node use it.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.localdriver.context import TOPOLOGY_KEY
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PIN = ("--pin-volumes",)


def _topology(node: str) -> pb.Topology:
    return pb.Topology(segments={TOPOLOGY_KEY: node})


@pytest.fixture
def pair(tmp_path: pathlib.Path) -> Iterator[tuple[csi.Stubs, csi.Stubs]]:
    state = tmp_path / "shared-state"
    a = driverproc.start_driver(
        tmp_path / "a", node_id="node-a", shared=True, state_dir=state, extra_args=PIN
    )
    b = driverproc.start_driver(
        tmp_path / "b", node_id="node-b", shared=True, state_dir=state, extra_args=PIN
    )
    stubs_a, stubs_b = csi.connect(a.endpoint), csi.connect(b.endpoint)
    yield stubs_a, stubs_b
    stubs_a.close()
    stubs_b.close()
    a.stop()
    b.stop()


def _create(
    stubs: csi.Stubs, name: str, *, preferred: list[str], requisite: list[str]
) -> pb.Volume:
    request = pb.CreateVolumeRequest(
        name=name,
        capacity_range=pb.CapacityRange(required_bytes=16 * csi.MiB),
        volume_capabilities=[csi.block_cap()],
        accessibility_requirements=pb.TopologyRequirement(
            preferred=[_topology(n) for n in preferred],
            requisite=[_topology(n) for n in requisite],
        ),
    )
    return stubs.controller.CreateVolume(request, timeout=csi.TIMEOUT_S).volume


def _publish(stubs: csi.Stubs, volume_id: str, node: str) -> None:
    stubs.controller.ControllerPublishVolume(
        pb.ControllerPublishVolumeRequest(
            volume_id=volume_id, node_id=node, volume_capability=csi.block_cap()
        )
    )


def test_each_node_has_its_own_topology(pair: tuple[csi.Stubs, csi.Stubs]) -> None:
    a, b = pair
    caps = a.identity.GetPluginCapabilities(pb.GetPluginCapabilitiesRequest()).capabilities
    services = {c.service.type for c in caps if c.HasField("service")}
    assert pb.PluginCapability.Service.VOLUME_ACCESSIBILITY_CONSTRAINTS in services
    info = b.node.NodeGetInfo(pb.NodeGetInfoRequest())
    assert dict(info.accessible_topology.segments) == {TOPOLOGY_KEY: "node-b"}
    for node, expected_free in (("node-b", True), ("node-z", False)):
        got = a.controller.GetCapacity(pb.GetCapacityRequest(accessible_topology=_topology(node)))
        assert (got.available_capacity > 0) is expected_free, node


def test_the_controller_of_one_node_makes_a_volume_for_the_other(
    pair: tuple[csi.Stubs, csi.Stubs],
) -> None:
    a, b = pair
    both = ["node-a", "node-b"]
    vol = _create(a, "for-b", preferred=["node-b", "node-a"], requisite=both)
    assert [dict(t.segments) for t in vol.accessible_topology] == [{TOPOLOGY_KEY: "node-b"}]
    code, message = csi.code_of(lambda: _publish(a, vol.volume_id, "node-a"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "node-b" in message
    _publish(a, vol.volume_id, "node-b")
    without_preference = _create(a, "for-a", preferred=[], requisite=both)
    assert [dict(t.segments) for t in without_preference.accessible_topology] == [
        {TOPOLOGY_KEY: "node-a"}
    ]
    code, message = csi.code_of(lambda: _create(b, "nowhere", preferred=[], requisite=["node-z"]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "requisite" in message


def test_only_its_node_stages_the_volume_and_reads_its_data(
    pair: tuple[csi.Stubs, csi.Stubs], paths: pathlib.Path
) -> None:
    a, b = pair
    vol = _create(a, "data-on-b", preferred=["node-b"], requisite=["node-a", "node-b"])
    staging, target = paths / "staging", paths / "target"
    staging.mkdir()
    code, message = csi.code_of(
        lambda: csi.stage_and_publish(
            a, vol.volume_id, staging=str(staging), target=str(target), cap=csi.block_cap()
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert "node-b" in message
    csi.stage_and_publish(
        b, vol.volume_id, staging=str(staging), target=str(target), cap=csi.block_cap()
    )
    payload = b"written on node-b\n" * 64
    fd = os.open(target, os.O_RDWR)
    try:
        os.pwrite(fd, payload, csi.MiB)
        os.fsync(fd)
        assert os.pread(fd, len(payload), csi.MiB) == payload
    finally:
        os.close(fd)
    csi.unpublish_and_unstage(b, vol.volume_id, staging=str(staging), target=str(target))
    b.controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=vol.volume_id))
    assert csi.list_volume_ids(a) == set()


def test_a_state_dir_serves_one_kind_of_instance(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "shared-state"
    pinned = driverproc.start_driver(
        tmp_path / "a", node_id="node-a", shared=True, state_dir=state, extra_args=PIN
    )
    pinned.stop()
    with pytest.raises(RuntimeError, match="shared-pinned"):
        driverproc.start_driver(tmp_path / "b", node_id="node-b", shared=True, state_dir=state)
