"""ControllerGetVolume, and ControllerModifyVolume when declared."""

from __future__ import annotations

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .caps import Caps
from .ledger import Ledger
from .target import Target, require

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code


@pytest.fixture
def get_volume(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "get-volume",
        caps.controller_has("GET_VOLUME"),
        "controller lacks GET_VOLUME (its refusal is checked in test_capability_rules)",
    )


@pytest.mark.usefixtures("get_volume")
def test_get_volume_returns_the_volume(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    volume = ledger.create_volume()
    answer = csi.controller.ControllerGetVolume(
        csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
    )
    assert answer.volume.volume_id == volume.volume_id
    assert answer.volume.capacity_bytes == volume.capacity_bytes
    assert dict(answer.volume.volume_context) == dict(volume.volume_context)
    assert answer.HasField("status"), "status is a required field"
    if caps.controller_has("VOLUME_CONDITION"):
        assert answer.status.HasField("volume_condition"), "VOLUME_CONDITION advertised"
        assert not answer.status.volume_condition.abnormal, answer.status.volume_condition.message
    if caps.controller_has("LIST_VOLUMES_PUBLISHED_NODES"):
        assert list(answer.status.published_node_ids) == [], "unpublished volume has nodes"


@pytest.mark.usefixtures("get_volume")
def test_get_volume_of_unknown_volume_is_not_found(csi: rpc.Csi) -> None:
    with rpc.refused(Code.NOT_FOUND):
        csi.controller.ControllerGetVolume(
            csi_pb2.ControllerGetVolumeRequest(volume_id="csi-conformance-no-such-volume")
        )


@pytest.fixture
def modify_volume(caps: Caps) -> None:
    if not caps.controller_has("MODIFY_VOLUME"):
        pytest.skip(
            "MODIFY_VOLUME not declared; its UNIMPLEMENTED answer is checked in "
            "test_capability_rules"
        )


@pytest.mark.usefixtures("modify_volume")
def test_modify_unknown_volume_is_not_found(csi: rpc.Csi, csi_target: Target) -> None:
    # With parameters the driver accepts, only the volume can be wrong.
    known = csi_target.mutable_parameters
    with rpc.refused(*((Code.NOT_FOUND,) if known else (Code.NOT_FOUND, Code.INVALID_ARGUMENT))):
        csi.controller.ControllerModifyVolume(
            csi_pb2.ControllerModifyVolumeRequest(
                volume_id="csi-conformance-no-such-volume",
                mutable_parameters=known or {"csi-conformance.example/unknown": "1"},
            )
        )


@pytest.mark.usefixtures("modify_volume")
def test_modify_refuses_unknown_parameter(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.controller.ControllerModifyVolume(
            csi_pb2.ControllerModifyVolumeRequest(
                volume_id=volume.volume_id,
                mutable_parameters={"csi-conformance.example/unknown": "1"},
            )
        )


@pytest.mark.usefixtures("modify_volume")
def test_modify_refuses_missing_parameters(ledger: Ledger, csi: rpc.Csi) -> None:
    # mutable_parameters is REQUIRED, and a required map needs one element.
    volume = ledger.create_volume()
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.controller.ControllerModifyVolume(
            csi_pb2.ControllerModifyVolumeRequest(volume_id=volume.volume_id)
        )


@pytest.mark.usefixtures("modify_volume")
def test_modify_applies_known_parameters_idempotently(
    ledger: Ledger, csi: rpc.Csi, csi_target: Target
) -> None:
    if not csi_target.mutable_parameters:
        pytest.skip("no valid mutable parameters known; give --csi-mutable-parameters")
    volume = ledger.create_volume()
    request = csi_pb2.ControllerModifyVolumeRequest(
        volume_id=volume.volume_id, mutable_parameters=csi_target.mutable_parameters
    )
    csi.controller.ControllerModifyVolume(request)
    csi.controller.ControllerModifyVolume(request)
    validated = csi.controller.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=volume.volume_id,
            volume_capabilities=[build.capability()],
            mutable_parameters=csi_target.mutable_parameters,
        )
    )
    assert validated.HasField("confirmed"), (
        f"the volume does not validate with the parameters just applied: {validated.message!r}"
    )


@pytest.mark.usefixtures("modify_volume")
def test_create_accepts_known_mutable_parameters(ledger: Ledger, csi_target: Target) -> None:
    if not csi_target.mutable_parameters:
        pytest.skip("no valid mutable parameters known; give --csi-mutable-parameters")
    request = ledger.request()
    request.mutable_parameters.update(csi_target.mutable_parameters)
    first = ledger.create(request)
    assert ledger.create(request).volume_id == first.volume_id
