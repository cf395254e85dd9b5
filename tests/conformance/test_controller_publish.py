"""ControllerPublishVolume and ControllerUnpublishVolume, for drivers that advertise them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .caps import Caps
from .ledger import Ledger

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code


@pytest.fixture(autouse=True)
def _needs_publish(caps: Caps) -> None:
    if not caps.controller_has("PUBLISH_UNPUBLISH_VOLUME"):
        pytest.skip(
            "PUBLISH_UNPUBLISH_VOLUME not advertised; "
            "its UNIMPLEMENTED answer is checked in test_capability_rules"
        )


def _publish_request(caps: Caps, volume: csi_pb2.Volume) -> csi_pb2.ControllerPublishVolumeRequest:
    return csi_pb2.ControllerPublishVolumeRequest(
        volume_id=volume.volume_id,
        node_id=caps.node_id,
        volume_capability=build.capability(),
        volume_context=volume.volume_context,
    )


def _clear(field: str) -> Callable[[csi_pb2.ControllerPublishVolumeRequest], None]:
    return lambda r: r.ClearField(field)


def _set(field: str, value: str) -> Callable[[csi_pb2.ControllerPublishVolumeRequest], None]:
    return lambda r: setattr(r, field, value)


BAD = {
    "no-volume-id": (_clear("volume_id"), Code.INVALID_ARGUMENT),
    "no-node-id": (_clear("node_id"), Code.INVALID_ARGUMENT),
    "no-capability": (_clear("volume_capability"), Code.INVALID_ARGUMENT),
    "unknown-volume": (_set("volume_id", "csi-conformance-no-such-volume"), Code.NOT_FOUND),
    "unknown-node": (_set("node_id", "csi-conformance-no-such-node"), Code.NOT_FOUND),
}


@pytest.mark.parametrize(("spoil", "code"), BAD.values(), ids=BAD.keys())
def test_publish_refuses_bad_request(
    ledger: Ledger,
    csi: rpc.Csi,
    caps: Caps,
    spoil: Callable[[csi_pb2.ControllerPublishVolumeRequest], None],
    code: Code,
) -> None:
    request = _publish_request(caps, ledger.create_volume())
    spoil(request)
    with rpc.refused(code):
        csi.controller.ControllerPublishVolume(request)


def test_unpublish_refuses_missing_volume_id(csi: rpc.Csi, caps: Caps) -> None:
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.controller.ControllerUnpublishVolume(
            csi_pb2.ControllerUnpublishVolumeRequest(node_id=caps.node_id)
        )


def _published_nodes(csi: rpc.Csi, caps: Caps, volume_id: str) -> list[list[str]]:
    """published_node_ids as ControllerGetVolume and ListVolumes report them."""
    views = []
    if caps.controller_has("GET_VOLUME"):
        answer = csi.controller.ControllerGetVolume(
            csi_pb2.ControllerGetVolumeRequest(volume_id=volume_id)
        )
        views.append(list(answer.status.published_node_ids))
    if caps.controller_has("LIST_VOLUMES"):
        entries = csi.controller.ListVolumes(csi_pb2.ListVolumesRequest()).entries
        views += [
            list(e.status.published_node_ids) for e in entries if e.volume.volume_id == volume_id
        ]
    return views


def test_publish_and_unpublish_are_idempotent(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    volume = ledger.create_volume()
    request = _publish_request(caps, volume)
    first = csi.controller.ControllerPublishVolume(request)
    unpublish = csi_pb2.ControllerUnpublishVolumeRequest(
        volume_id=volume.volume_id, node_id=caps.node_id
    )
    try:
        second = csi.controller.ControllerPublishVolume(request)
        assert dict(second.publish_context) == dict(first.publish_context)
        if caps.controller_has("LIST_VOLUMES_PUBLISHED_NODES"):
            for nodes in _published_nodes(csi, caps, volume.volume_id):
                assert caps.node_id in nodes, f"published to {caps.node_id}, reported {nodes}"
    finally:
        csi.controller.ControllerUnpublishVolume(unpublish)
    csi.controller.ControllerUnpublishVolume(unpublish)
    if caps.controller_has("LIST_VOLUMES_PUBLISHED_NODES"):
        for nodes in _published_nodes(csi, caps, volume.volume_id):
            assert caps.node_id not in nodes, f"unpublished, yet reported on {nodes}"


def test_incompatible_republish_is_already_exists(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    volume = ledger.create_volume()
    ledger.controller_publish(volume, build.capability(), readonly=False)
    request = _publish_request(caps, volume)
    if caps.controller_has("PUBLISH_READONLY"):
        request.readonly = True
    else:
        request.volume_capability.CopyFrom(build.capability(mode="SINGLE_NODE_READER_ONLY"))
    with rpc.refused(Code.ALREADY_EXISTS):
        csi.controller.ControllerPublishVolume(request)


def test_delete_of_a_published_volume_is_failed_precondition(ledger: Ledger, csi: rpc.Csi) -> None:
    """The controller knows the volume is attached to a node; deleting it would pull it away."""
    volume = ledger.create_volume()
    ledger.controller_publish(volume, build.capability(), readonly=False)
    with rpc.refused(Code.FAILED_PRECONDITION):
        csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))


def test_publishing_beyond_max_volumes_per_node_is_resource_exhausted(
    ledger: Ledger, csi: rpc.Csi
) -> None:
    limit = csi.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest()).max_volumes_per_node
    if not 0 < limit <= 16:
        pytest.skip(f"max_volumes_per_node is {limit}: no limit small enough to reach")
    for _ in range(limit):
        ledger.controller_publish(ledger.create_volume(), build.capability(), readonly=False)
    with rpc.refused(Code.RESOURCE_EXHAUSTED):
        ledger.controller_publish(ledger.create_volume(), build.capability(), readonly=False)
