"""--shared: two driver instances (two nodes) serve one state dir, like network storage."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

RWX = csi.Mode.MULTI_NODE_MULTI_WRITER


@pytest.fixture
def pair(tmp_path: pathlib.Path) -> Iterator[tuple[csi.Stubs, csi.Stubs]]:
    state = tmp_path / "shared-state"
    a = driverproc.start_driver(tmp_path / "a", node_id="node-a", shared=True, state_dir=state)
    b = driverproc.start_driver(tmp_path / "b", node_id="node-b", shared=True, state_dir=state)
    stubs_a, stubs_b = csi.connect(a.endpoint), csi.connect(b.endpoint)
    yield stubs_a, stubs_b
    stubs_a.close()
    stubs_b.close()
    a.stop()
    b.stop()


def _publish_to(stubs: csi.Stubs, volume_id: str, node: str, cap: pb.VolumeCapability) -> None:
    stubs.controller.ControllerPublishVolume(
        pb.ControllerPublishVolumeRequest(volume_id=volume_id, node_id=node, volume_capability=cap)
    )


def test_volumes_are_shared_and_unpinned(pair: tuple[csi.Stubs, csi.Stubs]) -> None:
    a, b = pair
    caps = a.identity.GetPluginCapabilities(pb.GetPluginCapabilitiesRequest()).capabilities
    services = {c.service.type for c in caps if c.HasField("service")}
    assert pb.PluginCapability.Service.VOLUME_ACCESSIBILITY_CONSTRAINTS not in services
    info = b.node.NodeGetInfo(pb.NodeGetInfoRequest())
    assert info.node_id == "node-b"
    assert not info.accessible_topology.segments
    vol = csi.create_volume(a, "shared-vol", size=8 * csi.MiB)
    assert not vol.accessible_topology
    assert csi.list_volume_ids(b) == {vol.volume_id}
    b.controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=vol.volume_id))
    assert csi.list_volume_ids(a) == set()


def test_publish_rules_across_nodes(pair: tuple[csi.Stubs, csi.Stubs]) -> None:
    a, _ = pair
    single = csi.create_volume(a, "single", size=8 * csi.MiB, cap=csi.block_cap())
    _publish_to(a, single.volume_id, "node-a", csi.block_cap())
    code, message = csi.code_of(lambda: _publish_to(a, single.volume_id, "node-b", csi.block_cap()))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "node-a" in message
    code, _ = csi.code_of(lambda: _publish_to(a, single.volume_id, "node-z", csi.block_cap()))
    assert code == grpc.StatusCode.NOT_FOUND
    shared = csi.create_volume(a, "rwx", size=8 * csi.MiB, cap=csi.block_cap(RWX))
    _publish_to(a, shared.volume_id, "node-a", csi.block_cap(RWX))
    _publish_to(a, shared.volume_id, "node-b", csi.block_cap(RWX))
    got = a.controller.ControllerGetVolume(
        pb.ControllerGetVolumeRequest(volume_id=shared.volume_id)
    )
    assert list(got.status.published_node_ids) == ["node-a", "node-b"]


def test_block_data_written_on_one_node_is_read_on_the_other(
    pair: tuple[csi.Stubs, csi.Stubs], paths: pathlib.Path
) -> None:
    a, b = pair
    cap = csi.block_cap(RWX)
    vol = csi.create_volume(a, "rwx-data", size=16 * csi.MiB, cap=cap)
    spots = {}
    for name, stubs in (("a", a), ("b", b)):
        staging, target = paths / f"staging-{name}", paths / f"target-{name}"
        staging.mkdir()
        csi.stage_and_publish(
            stubs, vol.volume_id, staging=str(staging), target=str(target), cap=cap
        )
        spots[name] = (stubs, str(staging), str(target))
    payload = b"written on node-a\n" * 256
    fd = os.open(spots["a"][2], os.O_WRONLY)
    os.pwrite(fd, payload, csi.MiB)
    os.fsync(fd)
    os.close(fd)
    fd = os.open(spots["b"][2], os.O_RDONLY)
    assert os.pread(fd, len(payload), csi.MiB) == payload
    os.close(fd)
    for stubs, staging, target in spots.values():
        csi.unpublish_and_unstage(stubs, vol.volume_id, staging=staging, target=target)
    a.controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=vol.volume_id))


def test_racing_creates_on_two_nodes_make_one_volume(pair: tuple[csi.Stubs, csi.Stubs]) -> None:
    a, b = pair
    with futures.ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(csi.create_volume, s, "both", size=8 * csi.MiB) for s in (a, b) * 4]
    ids = set()
    for job in jobs:
        try:
            ids.add(job.result().volume_id)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.ABORTED  # type: ignore[attr-defined]
    assert len(ids) == 1
    assert csi.list_volume_ids(a) == ids == csi.list_volume_ids(b)
