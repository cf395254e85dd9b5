"""ValidateVolumeCapabilities agrees with what CreateVolume accepts."""

from __future__ import annotations

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .ledger import Ledger

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code


def _validate(
    csi: rpc.Csi, volume: csi_pb2.Volume, capabilities: list[csi_pb2.VolumeCapability]
) -> csi_pb2.ValidateVolumeCapabilitiesResponse:
    return csi.controller.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=volume.volume_id,
            volume_context=volume.volume_context,
            volume_capabilities=capabilities,
        )
    )


def test_validate_refuses_missing_volume_id(csi: rpc.Csi) -> None:
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.controller.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(volume_capabilities=[build.capability()])
        )


def test_validate_refuses_missing_capabilities(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    with rpc.refused(Code.INVALID_ARGUMENT):
        _validate(csi, volume, [])


def test_validate_unknown_volume_is_not_found(csi: rpc.Csi) -> None:
    with rpc.refused(Code.NOT_FOUND):
        csi.controller.ValidateVolumeCapabilities(
            csi_pb2.ValidateVolumeCapabilitiesRequest(
                volume_id="csi-conformance-no-such-volume",
                volume_capabilities=[build.capability()],
            )
        )


CAPABILITIES = {
    "mount-single-node-writer": ("mount", "SINGLE_NODE_WRITER"),
    "mount-single-node-reader": ("mount", "SINGLE_NODE_READER_ONLY"),
    "mount-multi-node-reader": ("mount", "MULTI_NODE_READER_ONLY"),
    "mount-multi-node-multi-writer": ("mount", "MULTI_NODE_MULTI_WRITER"),
    "block-single-node-writer": ("block", "SINGLE_NODE_WRITER"),
    "block-multi-node-multi-writer": ("block", "MULTI_NODE_MULTI_WRITER"),
}


@pytest.mark.parametrize(("access", "mode"), CAPABILITIES.values(), ids=CAPABILITIES.keys())
def test_validate_confirms_what_create_accepts(
    ledger: Ledger, csi: rpc.Csi, access: str, mode: str
) -> None:
    """A capability CreateVolume accepts is confirmed; one it refuses is never confirmed."""
    wanted = build.capability(access, mode)
    request = ledger.request(access=access, mode=mode)
    answer = rpc.outcome(lambda: ledger.create(request))
    assert answer.code in (Code.OK, Code.INVALID_ARGUMENT), f"CreateVolume answered {answer}"
    if answer.code == Code.OK:
        volume = ledger.create(request)
        validated = _validate(csi, volume, [wanted])
        assert validated.HasField("confirmed"), (
            f"capability accepted at CreateVolume but not confirmed: {validated.message!r}"
        )
        assert wanted in validated.confirmed.volume_capabilities, (
            "confirmed capabilities do not include the requested one"
        )
        return
    volume = ledger.create_volume()
    validated = _validate(csi, volume, [wanted])
    assert not validated.HasField("confirmed"), (
        f"{access}/{mode} refused at CreateVolume yet confirmed for an existing volume"
    )
