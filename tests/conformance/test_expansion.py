"""Volume expansion: ControllerExpandVolume, NodeExpandVolume, online and offline.

What the node sees is checked, not only what the RPCs answer: after the CO's
part of the protocol (node expansion when the controller asks for it), a
block device must have the new size and a filesystem must have grown.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, data, rpc
from .caps import Caps, Probe
from .ledger import Ledger
from .nodesteps import Attachment
from .target import Target, require, require_access

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(120)]

Code = rpc.Code
BY_ACCESS = pytest.mark.parametrize("access", build.ACCESS_TYPES)


@pytest.fixture
def controller_expand(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "expansion",
        caps.controller_has("EXPAND_VOLUME"),
        "controller lacks EXPAND_VOLUME (its refusal is checked in test_capability_rules)",
    )


@pytest.fixture
def node_expand(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "expansion",
        caps.node_has("EXPAND_VOLUME"),
        "node lacks EXPAND_VOLUME (its refusal is checked in test_capability_rules)",
    )


def _expand_request(
    volume_id: str, size: int, access: str = "mount"
) -> csi_pb2.ControllerExpandVolumeRequest:
    return csi_pb2.ControllerExpandVolumeRequest(
        volume_id=volume_id,
        capacity_range=build.capacity(required=size),
        volume_capability=build.capability(access),
    )


def _node_expand(
    csi: rpc.Csi, attachment: Attachment, size: int, path: str | None = None
) -> csi_pb2.NodeExpandVolumeResponse:
    answer = csi.node.NodeExpandVolume(
        csi_pb2.NodeExpandVolumeRequest(
            volume_id=attachment.volume_id,
            volume_path=path or attachment.target_path,
            staging_target_path=attachment.staging_path,
            capacity_range=build.capacity(required=size),
            volume_capability=attachment.capability,
        )
    )
    if answer.capacity_bytes:
        assert answer.capacity_bytes >= size, f"NodeExpandVolume reports {answer.capacity_bytes}"
    return answer


def _node_sees(ledger: Ledger, attachment: Attachment, old_size: int, new_size: int) -> None:
    """The device or filesystem on the node, and the driver's stats, show the growth."""
    if ledger.caps.node_has("GET_VOLUME_STATS"):
        stats = ledger.csi.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(
                volume_id=attachment.volume_id,
                volume_path=attachment.target_path,
                staging_target_path=attachment.staging_path,
            )
        )
        totals = [u.total for u in stats.usage if u.unit == csi_pb2.VolumeUsage.BYTES]
        assert totals and totals[0] > old_size, f"NodeGetVolumeStats still reports {totals}"
    if attachment.access == "block":
        size = data.device_size(attachment.target_path)
        assert size >= new_size, (
            f"block device still has {size} bytes after expansion to {new_size}"
        )
    else:
        size = data.filesystem_size(attachment.target_path)
        assert size > old_size, (
            f"filesystem has {size} bytes after expansion from {old_size} to {new_size}"
        )


def _finish_on_node(ledger: Ledger, attachment: Attachment, node_required: bool, size: int) -> None:
    """The CO's node step: NodeExpandVolume exactly when the controller asked for it.

    A node may refuse to grow a filesystem that is in use (FAILED_PRECONDITION,
    "caller MUST NOT retry"); the CO then takes the volume offline on the node
    and expands it right after staging, before publishing it again.
    """
    if not node_required:
        return
    assert ledger.caps.node_has("EXPAND_VOLUME"), (
        "node_expansion_required is true but the node lacks EXPAND_VOLUME"
    )
    answer = rpc.outcome(lambda: _node_expand(ledger.csi, attachment, size))
    if answer.code == Code.OK:
        return
    assert answer.code == Code.FAILED_PRECONDITION, f"NodeExpandVolume answered {answer}"
    ledger.detach(attachment)
    attachment.publish_context = ledger.controller_publish(
        attachment.volume, attachment.capability, attachment.readonly
    )
    if attachment.staging_path:
        ledger.stage(
            attachment.volume,
            attachment.capability,
            attachment.publish_context,
            attachment.staging_path,
        )
        _node_expand(ledger.csi, attachment, size, attachment.staging_path)
        ledger.publish(attachment)
    else:
        ledger.publish(attachment)
        _node_expand(ledger.csi, attachment, size)


BAD_CONTROLLER: dict[str, Callable[[csi_pb2.ControllerExpandVolumeRequest], None]] = {
    "no-volume-id": lambda r: r.ClearField("volume_id"),
    "no-capacity": lambda r: r.ClearField("capacity_range"),
}
BAD_RANGE_CODES = (Code.INVALID_ARGUMENT, Code.OUT_OF_RANGE)


@pytest.mark.usefixtures("controller_expand")
@pytest.mark.parametrize("spoil", BAD_CONTROLLER.values(), ids=BAD_CONTROLLER.keys())
def test_controller_expand_refuses_bad_request(
    ledger: Ledger,
    csi: rpc.Csi,
    caps: Caps,
    spoil: Callable[[csi_pb2.ControllerExpandVolumeRequest], None],
) -> None:
    volume = ledger.create_volume()
    request = _expand_request(volume.volume_id, caps.volume_size * 2)
    spoil(request)
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.controller.ControllerExpandVolume(request)


@pytest.mark.usefixtures("controller_expand")
def test_controller_expand_refuses_limit_below_required(
    ledger: Ledger, csi: rpc.Csi, caps: Caps
) -> None:
    volume = ledger.create_volume()
    request = _expand_request(volume.volume_id, caps.volume_size * 2)
    request.capacity_range.limit_bytes = caps.volume_size + caps.volume_size // 2
    with rpc.refused(*BAD_RANGE_CODES):
        csi.controller.ControllerExpandVolume(request)


@pytest.mark.usefixtures("controller_expand")
def test_controller_expand_of_unknown_volume_is_not_found(csi: rpc.Csi, caps: Caps) -> None:
    with rpc.refused(Code.NOT_FOUND):
        csi.controller.ControllerExpandVolume(
            _expand_request("csi-conformance-no-such-volume", caps.volume_size * 2)
        )


@pytest.mark.usefixtures("controller_expand")
def test_controller_expand_beyond_possible_is_out_of_range(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    with rpc.refused(Code.OUT_OF_RANGE, Code.RESOURCE_EXHAUSTED):
        csi.controller.ControllerExpandVolume(_expand_request(volume.volume_id, 2**62))


@pytest.mark.usefixtures("controller_expand")
def test_controller_expand_is_idempotent_and_never_shrinks(
    ledger: Ledger, csi: rpc.Csi, caps: Caps
) -> None:
    volume = ledger.create_volume()
    size = caps.volume_size * 2
    first = csi.controller.ControllerExpandVolume(_expand_request(volume.volume_id, size))
    assert first.capacity_bytes >= size
    again = csi.controller.ControllerExpandVolume(_expand_request(volume.volume_id, size))
    assert again.capacity_bytes == first.capacity_bytes
    smaller = csi.controller.ControllerExpandVolume(
        _expand_request(volume.volume_id, caps.volume_size)
    )
    assert smaller.capacity_bytes == first.capacity_bytes, "a smaller request shrank the volume"
    if caps.controller_has("GET_VOLUME"):
        got = csi.controller.ControllerGetVolume(
            csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
        )
        assert got.volume.capacity_bytes == first.capacity_bytes


@pytest.mark.usefixtures("controller_expand")
@BY_ACCESS
def test_offline_expansion_reaches_the_node(
    ledger: Ledger,
    csi: rpc.Csi,
    caps: Caps,
    csi_target: Target,
    access_probes: dict[str, Probe],
    access: str,
) -> None:
    require_access(csi_target, access_probes, access)
    payload = data.pattern("offline", 64 * 1024)
    volume = ledger.create_volume(access=access)
    ledger.put(volume, access, payload)
    size = caps.volume_size * 2
    answer = csi.controller.ControllerExpandVolume(_expand_request(volume.volume_id, size, access))
    assert answer.capacity_bytes >= size
    attachment = ledger.attach(volume, access=access)
    _finish_on_node(ledger, attachment, answer.node_expansion_required, size)
    _node_sees(ledger, attachment, caps.volume_size, size)
    assert data.load(access, attachment.target_path, len(payload)) == payload


@BY_ACCESS
def test_online_expansion_follows_the_declared_type(
    ledger: Ledger,
    csi: rpc.Csi,
    caps: Caps,
    csi_target: Target,
    access_probes: dict[str, Probe],
    access: str,
) -> None:
    """ONLINE: a published volume grows in place. OFFLINE only: the controller refuses it."""
    require(
        csi_target,
        "expansion",
        bool(caps.expansion),
        "no VolumeExpansion type declared (refusal checked in test_capability_rules)",
    )
    require_access(csi_target, access_probes, access)
    payload = data.pattern("online", 64 * 1024)
    volume = ledger.create_volume(access=access)
    attachment = ledger.attach(volume, access=access)
    data.store(access, attachment.target_path, payload)
    size = caps.volume_size * 2
    request = _expand_request(volume.volume_id, size, access)
    if "ONLINE" not in caps.expansion:
        if caps.controller_has("EXPAND_VOLUME"):
            with rpc.refused(Code.FAILED_PRECONDITION):
                csi.controller.ControllerExpandVolume(request)
        return
    node_required = True
    if caps.controller_has("EXPAND_VOLUME"):
        answer = csi.controller.ControllerExpandVolume(request)
        assert answer.capacity_bytes >= size
        node_required = answer.node_expansion_required
    _finish_on_node(ledger, attachment, node_required, size)
    _node_sees(ledger, attachment, caps.volume_size, size)
    assert data.load(access, attachment.target_path, len(payload)) == payload


BAD_NODE: dict[str, Callable[[csi_pb2.NodeExpandVolumeRequest], None]] = {
    "no-volume-id": lambda r: r.ClearField("volume_id"),
    "no-volume-path": lambda r: r.ClearField("volume_path"),
}


@pytest.mark.usefixtures("node_expand")
@pytest.mark.parametrize("spoil", BAD_NODE.values(), ids=BAD_NODE.keys())
def test_node_expand_refuses_bad_request(
    ledger: Ledger,
    csi: rpc.Csi,
    caps: Caps,
    spoil: Callable[[csi_pb2.NodeExpandVolumeRequest], None],
) -> None:
    attachment = ledger.attach(ledger.create_volume())
    request = csi_pb2.NodeExpandVolumeRequest(
        volume_id=attachment.volume_id,
        volume_path=attachment.target_path,
        staging_target_path=attachment.staging_path,
        capacity_range=build.capacity(required=caps.volume_size),
    )
    spoil(request)
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.node.NodeExpandVolume(request)


@pytest.mark.usefixtures("node_expand")
def test_node_expand_of_unknown_volume_is_not_found(
    csi: rpc.Csi, caps: Caps, tmp_path: Path
) -> None:
    with rpc.refused(Code.NOT_FOUND):
        csi.node.NodeExpandVolume(
            csi_pb2.NodeExpandVolumeRequest(
                volume_id="csi-conformance-no-such-volume",
                volume_path=str(tmp_path),
                capacity_range=build.capacity(required=caps.volume_size * 2),
            )
        )
