"""NodeStageVolume and NodeUnstageVolume, for nodes that advertise STAGE_UNSTAGE_VOLUME."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .caps import Caps, Probe
from .ledger import Ledger
from .nodesteps import Attachment
from .target import Target, check_offer, require, require_access

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code


@pytest.fixture(autouse=True)
def _needs_staging(csi_target: Target, caps: Caps) -> None:
    check_offer(csi_target, "stage-unstage", caps.stage)
    require(
        csi_target,
        "stage-unstage",
        caps.stage,
        "node lacks STAGE_UNSTAGE_VOLUME (its refusal is checked in test_capability_rules; "
        "publishing without staging in test_node_publish)",
    )


def _stage_request(
    ledger: Ledger, volume: csi_pb2.Volume, path: str, access: str = "mount"
) -> csi_pb2.NodeStageVolumeRequest:
    return csi_pb2.NodeStageVolumeRequest(
        volume_id=volume.volume_id,
        publish_context=ledger.controller_publish(volume, build.capability(), readonly=False),
        staging_target_path=path,
        volume_capability=build.capability(access),
        volume_context=volume.volume_context,
    )


BAD: dict[str, tuple[Callable[[csi_pb2.NodeStageVolumeRequest], None], Code]] = {
    "no-volume-id": (lambda r: r.ClearField("volume_id"), Code.INVALID_ARGUMENT),
    "no-staging-path": (lambda r: r.ClearField("staging_target_path"), Code.INVALID_ARGUMENT),
    "no-capability": (lambda r: r.ClearField("volume_capability"), Code.INVALID_ARGUMENT),
    "unknown-volume": (
        lambda r: setattr(r, "volume_id", "csi-conformance-no-such-volume"),
        Code.NOT_FOUND,
    ),
}


@pytest.mark.parametrize(("spoil", "code"), BAD.values(), ids=BAD.keys())
def test_stage_refuses_bad_request(
    ledger: Ledger,
    csi: rpc.Csi,
    spoil: Callable[[csi_pb2.NodeStageVolumeRequest], None],
    code: Code,
) -> None:
    volume = ledger.create_volume()
    request = _stage_request(ledger, volume, ledger.staging_path())
    ledger.will_unstage(volume.volume_id, request.staging_target_path)
    spoil(request)
    with rpc.refused(code):
        csi.node.NodeStageVolume(request)


UNSTAGE_BAD: dict[str, Callable[[csi_pb2.NodeUnstageVolumeRequest], None]] = {
    "no-volume-id": lambda r: r.ClearField("volume_id"),
    "no-staging-path": lambda r: r.ClearField("staging_target_path"),
}


@pytest.mark.parametrize("spoil", UNSTAGE_BAD.values(), ids=UNSTAGE_BAD.keys())
def test_unstage_refuses_bad_request(
    ledger: Ledger, csi: rpc.Csi, spoil: Callable[[csi_pb2.NodeUnstageVolumeRequest], None]
) -> None:
    volume = ledger.create_volume()
    context = ledger.controller_publish(volume, build.capability(), readonly=False)
    path = ledger.stage(volume, build.capability(), context)
    request = csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=path)
    spoil(request)
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.node.NodeUnstageVolume(request)


def test_stage_and_unstage_are_idempotent(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    path = ledger.staging_path()
    request = _stage_request(ledger, volume, path)
    csi.node.NodeStageVolume(request)
    csi.node.NodeStageVolume(request)
    unstage = csi_pb2.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=path)
    csi.node.NodeUnstageVolume(unstage)
    csi.node.NodeUnstageVolume(unstage)
    # The staging directory belongs to the CO: it stays, and nothing is left on it.
    assert os.path.isdir(path), "NodeUnstageVolume removed the CO's staging directory"
    assert not os.path.ismount(path), "staging path still mounted after NodeUnstageVolume"


def test_restage_with_other_capability_is_already_exists(
    ledger: Ledger, csi: rpc.Csi, csi_target: Target, access_probes: dict[str, Probe]
) -> None:
    require_access(csi_target, access_probes, "block")
    volume = ledger.create_volume()
    request = _stage_request(ledger, volume, ledger.staging_path(), access="block")
    ledger.stage(
        volume,
        build.capability("mount"),
        dict(request.publish_context),
        request.staging_target_path,
    )
    with rpc.refused(Code.ALREADY_EXISTS):
        csi.node.NodeStageVolume(request)


def test_publish_without_staging_is_failed_precondition(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    attachment = Attachment(
        volume=volume,
        capability=build.capability(),
        readonly=False,
        publish_context=ledger.controller_publish(volume, build.capability(), readonly=False),
        staging_path="",
        target_path=ledger.target_path(),
    )
    with rpc.refused(Code.FAILED_PRECONDITION):
        ledger.publish(attachment)
