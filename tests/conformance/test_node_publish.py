"""NodePublishVolume and NodeUnpublishVolume for filesystem and block access."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, data, rpc
from .caps import Caps, Probe
from .ledger import Ledger
from .nodesteps import Attachment
from .target import Target, require, require_access

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code
BY_ACCESS = pytest.mark.parametrize("access", build.ACCESS_TYPES)
#: A call naming the wrong volume may succeed as a no-op or be refused.
STRAY_CODES = (Code.OK, Code.NOT_FOUND, Code.FAILED_PRECONDITION, Code.INVALID_ARGUMENT)


def _prepared(ledger: Ledger) -> Attachment:
    """A volume taken up to (but not through) NodePublishVolume."""
    attachment = ledger.plan(ledger.create_volume())
    attachment.publish_context = ledger.controller_publish(
        attachment.volume, attachment.capability, readonly=False
    )
    if attachment.staging_path:
        ledger.stage(
            attachment.volume,
            attachment.capability,
            attachment.publish_context,
            attachment.staging_path,
        )
    return attachment


def _unpublish(csi: rpc.Csi, attachment: Attachment) -> None:
    csi.node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=attachment.volume_id, target_path=attachment.target_path
        )
    )


def _assert_published(attachment: Attachment, path: str | None = None) -> None:
    path = path or attachment.target_path
    if attachment.access == "block":
        assert stat.S_ISBLK(os.stat(path).st_mode), f"{path} is not a block device"
    else:
        assert os.path.isdir(path) and os.path.ismount(path), f"{path} is not a mounted directory"


BAD: dict[str, tuple[Callable[[csi_pb2.NodePublishVolumeRequest], None], Code]] = {
    "no-volume-id": (lambda r: r.ClearField("volume_id"), Code.INVALID_ARGUMENT),
    "no-target-path": (lambda r: r.ClearField("target_path"), Code.INVALID_ARGUMENT),
    "no-capability": (lambda r: r.ClearField("volume_capability"), Code.INVALID_ARGUMENT),
    "unknown-volume": (
        lambda r: setattr(r, "volume_id", "csi-conformance-no-such-volume"),
        Code.NOT_FOUND,
    ),
}


@pytest.mark.parametrize(("spoil", "code"), BAD.values(), ids=BAD.keys())
def test_publish_refuses_bad_request(
    ledger: Ledger,
    csi: rpc.Csi,
    spoil: Callable[[csi_pb2.NodePublishVolumeRequest], None],
    code: Code,
) -> None:
    attachment = _prepared(ledger)
    request = ledger.publish_request(attachment)
    spoil(request)
    if request.target_path:
        ledger.will_unpublish(attachment.volume_id, request.target_path)
    with rpc.refused(code):
        csi.node.NodePublishVolume(request)


UNPUBLISH_BAD: dict[str, Callable[[csi_pb2.NodeUnpublishVolumeRequest], None]] = {
    "no-volume-id": lambda r: r.ClearField("volume_id"),
    "no-target-path": lambda r: r.ClearField("target_path"),
}


@pytest.mark.parametrize("spoil", UNPUBLISH_BAD.values(), ids=UNPUBLISH_BAD.keys())
def test_unpublish_refuses_bad_request(
    ledger: Ledger, csi: rpc.Csi, spoil: Callable[[csi_pb2.NodeUnpublishVolumeRequest], None]
) -> None:
    attachment = ledger.attach(ledger.create_volume())
    request = csi_pb2.NodeUnpublishVolumeRequest(
        volume_id=attachment.volume_id, target_path=attachment.target_path
    )
    spoil(request)
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.node.NodeUnpublishVolume(request)


@BY_ACCESS
def test_data_survives_unpublish_and_publish(
    ledger: Ledger,
    csi_target: Target,
    access_probes: dict[str, Probe],
    access: str,
) -> None:
    require_access(csi_target, access_probes, access)
    payload = data.pattern(f"roundtrip-{access}", 256 * 1024)
    attachment = ledger.attach(ledger.create_volume(access=access), access=access)
    _assert_published(attachment)
    data.store(access, attachment.target_path, payload)
    ledger.detach(attachment)
    assert not os.path.lexists(attachment.target_path), (
        "NodeUnpublishVolume must remove the target path it created"
    )
    ledger.reattach(attachment)
    _assert_published(attachment)
    assert data.load(access, attachment.target_path, len(payload)) == payload


@BY_ACCESS
def test_readonly_publish_refuses_writes(
    ledger: Ledger,
    csi_target: Target,
    access_probes: dict[str, Probe],
    access: str,
) -> None:
    require_access(csi_target, access_probes, access)
    payload = data.pattern(f"readonly-{access}", 64 * 1024)
    volume = ledger.create_volume(access=access)
    ledger.put(volume, access, payload)
    attachment = ledger.attach(volume, access=access, readonly=True)
    _assert_published(attachment)
    assert data.load(access, attachment.target_path, len(payload)) == payload
    with pytest.raises(OSError):  # EROFS, EPERM or EACCES, depending on how it was made read-only
        data.store(access, attachment.target_path, data.pattern("overwrite", len(payload)))
    assert data.load(access, attachment.target_path, len(payload)) == payload


@BY_ACCESS
def test_publish_and_unpublish_are_idempotent(
    ledger: Ledger,
    csi: rpc.Csi,
    csi_target: Target,
    access_probes: dict[str, Probe],
    access: str,
) -> None:
    require_access(csi_target, access_probes, access)
    attachment = ledger.attach(ledger.create_volume(access=access), access=access)
    csi.node.NodePublishVolume(ledger.publish_request(attachment))
    _assert_published(attachment)
    _unpublish(csi, attachment)
    _unpublish(csi, attachment)
    assert not os.path.lexists(attachment.target_path)


def test_republish_with_other_readonly_flag_is_already_exists(ledger: Ledger, csi: rpc.Csi) -> None:
    attachment = ledger.attach(ledger.create_volume())
    request = ledger.publish_request(attachment)
    request.readonly = True
    with rpc.refused(Code.ALREADY_EXISTS):
        csi.node.NodePublishVolume(request)
    _assert_published(attachment)


SHARING = {
    "multi-node-multi-writer": ("MULTI_NODE_MULTI_WRITER", True),
    "single-node-multi-writer": ("SINGLE_NODE_MULTI_WRITER", True),
    "single-node-single-writer": ("SINGLE_NODE_SINGLE_WRITER", False),
}


@pytest.mark.parametrize(("mode", "shared"), SHARING.values(), ids=SHARING.keys())
def test_second_target_path_follows_the_access_mode(
    ledger: Ledger,
    csi: rpc.Csi,
    caps: Caps,
    csi_target: Target,
    access_probes: dict[str, Probe],
    mode: str,
    shared: bool,
) -> None:
    """Multi-writer modes may be published at several targets; single-writer may not."""
    if mode.startswith("MULTI_NODE"):
        require(
            csi_target,
            "multi-node",
            access_probes["multi-node"].accepted,
            "multi-node access modes refused",
        )
    elif not (
        caps.controller_has("SINGLE_NODE_MULTI_WRITER")
        and caps.node_has("SINGLE_NODE_MULTI_WRITER")
    ):
        pytest.skip(f"{mode} belongs to SINGLE_NODE_MULTI_WRITER, which is not advertised")
    volume = ledger.create_volume(mode=mode)
    attachment = ledger.attach(volume, mode=mode)
    second = ledger.target_path()
    if shared:
        ledger.publish(attachment, second)
        data.store("mount", attachment.target_path, b"shared")
        assert data.load("mount", second, 6) == b"shared", "two targets show different data"
    else:
        with rpc.refused(Code.FAILED_PRECONDITION):
            ledger.publish(attachment, second)


def test_unpublish_naming_another_volume_leaves_the_target_alone(
    ledger: Ledger, csi: rpc.Csi
) -> None:
    """A stray NodeUnpublishVolume must not tear down what belongs to another volume."""
    payload = data.pattern("stray", 64 * 1024)
    attachment = ledger.attach(ledger.create_volume())
    data.store("mount", attachment.target_path, payload)
    other = ledger.create_volume()
    answer = rpc.outcome(
        lambda: csi.node.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(
                volume_id=other.volume_id, target_path=attachment.target_path
            )
        )
    )
    assert answer.code in STRAY_CODES, f"NodeUnpublishVolume answered {answer}"
    _assert_published(attachment)
    assert data.load("mount", attachment.target_path, len(payload)) == payload


def test_unstage_naming_another_volume_leaves_the_staging_alone(
    ledger: Ledger, csi: rpc.Csi, caps: Caps
) -> None:
    if not caps.stage:
        pytest.skip("the node does not stage volumes")
    payload = data.pattern("stray-stage", 64 * 1024)
    attachment = ledger.attach(ledger.create_volume())
    data.store("mount", attachment.target_path, payload)
    other = ledger.create_volume()
    answer = rpc.outcome(
        lambda: csi.node.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(
                volume_id=other.volume_id, staging_target_path=attachment.staging_path
            )
        )
    )
    assert answer.code in STRAY_CODES, f"NodeUnstageVolume answered {answer}"
    _assert_published(attachment)
    assert data.load("mount", attachment.target_path, len(payload)) == payload
    ledger.detach(attachment)
    ledger.reattach(attachment)
    assert data.load("mount", attachment.target_path, len(payload)) == payload


def test_block_volume_data_survives_a_filesystem_request(
    ledger: Ledger,
    csi: rpc.Csi,
    csi_target: Target,
    access_probes: dict[str, Probe],
) -> None:
    """Staging or publishing a block-only volume as a filesystem must not format it.

    CreateVolume named block access only; mount access exceeds what the volume
    was made for (FAILED_PRECONDITION). Whatever the answer, the raw data stays.
    """
    require_access(csi_target, access_probes, "block")
    payload = data.pattern("raw", 256 * 1024)
    volume = ledger.create_volume(access="block")
    ledger.put(volume, "block", payload)
    answer, attachment = ledger.try_attach(volume, access="mount")
    if attachment is not None:
        ledger.detach(attachment)
    assert ledger.get(volume, "block", len(payload)) == payload, (
        f"raw data of a block volume destroyed by a mount request (answered {answer})"
    )
    assert answer.code == Code.FAILED_PRECONDITION, (
        f"mount access to a block-only volume answered {answer}"
    )
