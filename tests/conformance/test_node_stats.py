"""NodeGetVolumeStats on published (and staged) volumes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from csi_vm.csi.pb import csi_pb2

from . import data, rpc
from .caps import Caps, Probe
from .ledger import Ledger
from .nodesteps import Attachment
from .target import Target, require, require_access

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code
MiB = 1024 * 1024
Unit = csi_pb2.VolumeUsage.Unit


@pytest.fixture(autouse=True)
def _needs_stats(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "stats",
        caps.node_has("GET_VOLUME_STATS"),
        "node lacks GET_VOLUME_STATS (its refusal is checked in test_capability_rules)",
    )


def _stats(
    csi: rpc.Csi, attachment: Attachment, path: str | None = None
) -> csi_pb2.NodeGetVolumeStatsResponse:
    return csi.node.NodeGetVolumeStats(
        csi_pb2.NodeGetVolumeStatsRequest(
            volume_id=attachment.volume_id,
            volume_path=path or attachment.target_path,
            staging_target_path=attachment.staging_path,
        )
    )


def _usage(answer: csi_pb2.NodeGetVolumeStatsResponse, unit: str) -> csi_pb2.VolumeUsage | None:
    found = [u for u in answer.usage if u.unit == Unit.Value(unit)]
    assert len(found) <= 1, f"several {unit} usages reported"
    return found[0] if found else None


def _sane(usage: csi_pb2.VolumeUsage) -> None:
    assert usage.total > 0
    assert usage.used >= 0 and usage.available >= 0
    assert usage.used <= usage.total and usage.available <= usage.total


BAD: dict[str, tuple[Callable[[csi_pb2.NodeGetVolumeStatsRequest, Path], None], Code]] = {
    "no-volume-id": (lambda r, p: r.ClearField("volume_id"), Code.INVALID_ARGUMENT),
    "no-volume-path": (lambda r, p: r.ClearField("volume_path"), Code.INVALID_ARGUMENT),
    "unknown-volume": (
        lambda r, p: setattr(r, "volume_id", "csi-conformance-no-such-volume"),
        Code.NOT_FOUND,
    ),
    "path-that-does-not-exist": (
        lambda r, p: setattr(r, "volume_path", str(p / "missing")),
        Code.NOT_FOUND,
    ),
}


@pytest.mark.parametrize(("spoil", "code"), BAD.values(), ids=BAD.keys())
def test_stats_refuses_bad_request(
    ledger: Ledger,
    csi: rpc.Csi,
    tmp_path: Path,
    spoil: Callable[[csi_pb2.NodeGetVolumeStatsRequest, Path], None],
    code: Code,
) -> None:
    attachment = ledger.attach(ledger.create_volume())
    request = csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=attachment.volume_id,
        volume_path=attachment.target_path,
        staging_target_path=attachment.staging_path,
    )
    spoil(request, tmp_path)
    with rpc.refused(code):
        csi.node.NodeGetVolumeStats(request)


def test_stats_of_a_filesystem_follow_writes(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    volume = ledger.create_volume()
    attachment = ledger.attach(volume)
    before = _stats(csi, attachment)
    usage = _usage(before, "BYTES")
    assert usage is not None, "no BYTES usage for a mounted volume"
    _sane(usage)
    if volume.capacity_bytes:
        assert usage.total <= volume.capacity_bytes, "filesystem larger than its volume"
    inodes = _usage(before, "INODES")
    if inodes is not None:
        _sane(inodes)
    written = 4 * MiB
    data.write_file(attachment.target_path, data.pattern("stats", written))
    after = _usage(_stats(csi, attachment), "BYTES")
    assert after is not None
    assert after.used >= usage.used + written * 3 // 4, (
        f"used bytes went from {usage.used} to {after.used} after writing {written}"
    )
    if caps.node_has("VOLUME_CONDITION"):
        condition = _stats(csi, attachment).volume_condition
        assert not condition.abnormal, condition.message


def test_stats_of_a_block_volume_report_its_size(
    ledger: Ledger,
    csi: rpc.Csi,
    csi_target: Target,
    access_probes: dict[str, Probe],
) -> None:
    require_access(csi_target, access_probes, "block")
    volume = ledger.create_volume(access="block")
    attachment = ledger.attach(volume, access="block")
    usage = _usage(_stats(csi, attachment), "BYTES")
    assert usage is not None, "no BYTES usage for a block volume"
    assert usage.total == data.device_size(attachment.target_path), (
        "total differs from the size of the published device"
    )


def test_stats_answer_for_the_staging_path_too(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    """volume_path may be any path where the volume was staged or published."""
    if not caps.stage:
        pytest.skip("the node does not stage volumes")
    attachment = ledger.attach(ledger.create_volume())
    usage = _usage(_stats(csi, attachment, attachment.staging_path), "BYTES")
    assert usage is not None
    published = _usage(_stats(csi, attachment), "BYTES")
    assert published is not None
    assert usage.total == published.total


def test_stats_of_an_unpublished_path_is_not_found(ledger: Ledger, csi: rpc.Csi) -> None:
    attachment = ledger.attach(ledger.create_volume())
    ledger.detach(attachment)
    with rpc.refused(Code.NOT_FOUND):
        _stats(csi, attachment)


def test_stats_of_a_path_belonging_to_another_volume_is_not_found(
    ledger: Ledger, csi: rpc.Csi
) -> None:
    mine = ledger.attach(ledger.create_volume())
    theirs = ledger.attach(ledger.create_volume())
    with rpc.refused(Code.NOT_FOUND):
        _stats(csi, mine, theirs.target_path)
