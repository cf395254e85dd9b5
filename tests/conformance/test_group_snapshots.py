"""GroupController: create, get and delete volume group snapshots."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, data, rpc
from .caps import Caps
from .ledger import Ledger
from .listing import list_snapshot_ids
from .target import Target, require

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(120)]

Code = rpc.Code


@pytest.fixture(autouse=True)
def _needs_groups(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "group-snapshot",
        caps.group_snapshots,
        "no GROUP_CONTROLLER_SERVICE with CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT "
        "(its refusal is checked in test_capability_rules)",
    )


def _get(csi: rpc.Csi, group: csi_pb2.VolumeGroupSnapshot) -> csi_pb2.VolumeGroupSnapshot:
    return csi.group.GetVolumeGroupSnapshot(
        csi_pb2.GetVolumeGroupSnapshotRequest(
            group_snapshot_id=group.group_snapshot_id,
            snapshot_ids=[s.snapshot_id for s in group.snapshots],
        )
    ).group_snapshot


def _refuse(
    ledger: Ledger, request: csi_pb2.CreateVolumeGroupSnapshotRequest, *codes: Code
) -> None:
    with rpc.refused(*codes):
        group = ledger.csi.group.CreateVolumeGroupSnapshot(request).group_snapshot
        ledger.track_group(group)


BAD: dict[str, tuple[Callable[[csi_pb2.CreateVolumeGroupSnapshotRequest], None], Code]] = {
    "no-name": (lambda r: r.ClearField("name"), Code.INVALID_ARGUMENT),
    "no-sources": (lambda r: r.ClearField("source_volume_ids"), Code.INVALID_ARGUMENT),
    "unknown-source": (
        lambda r: r.source_volume_ids.append("csi-conformance-no-such-volume"),
        Code.NOT_FOUND,
    ),
}


@pytest.mark.parametrize(("spoil", "code"), BAD.values(), ids=BAD.keys())
def test_create_group_refuses_bad_request(
    ledger: Ledger,
    spoil: Callable[[csi_pb2.CreateVolumeGroupSnapshotRequest], None],
    code: Code,
) -> None:
    request = csi_pb2.CreateVolumeGroupSnapshotRequest(
        name=ledger.name("group"), source_volume_ids=[ledger.create_volume().volume_id]
    )
    spoil(request)
    _refuse(ledger, request, code)


def test_group_holds_one_snapshot_per_volume(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    volumes = [ledger.create_volume() for _ in range(2)]
    group = ledger.create_group([v.volume_id for v in volumes])
    assert group.group_snapshot_id, "group_snapshot_id is required"
    assert group.HasField("creation_time") and group.creation_time.seconds > 0
    assert sorted(s.source_volume_id for s in group.snapshots) == sorted(
        v.volume_id for v in volumes
    )
    for snapshot in group.snapshots:
        assert snapshot.snapshot_id
        assert snapshot.ready_to_use
        if snapshot.group_snapshot_id:
            assert snapshot.group_snapshot_id == group.group_snapshot_id
    if caps.controller_has("LIST_SNAPSHOTS"):
        listed = list_snapshot_ids(csi)
        assert {s.snapshot_id for s in group.snapshots} <= listed, "group members not listed"


def test_create_group_is_idempotent(ledger: Ledger, csi: rpc.Csi) -> None:
    volumes = [ledger.create_volume().volume_id for _ in range(2)]
    name = ledger.name("group")
    first = ledger.create_group(volumes, name=name)
    again = ledger.create_group(volumes, name=name)
    assert again.group_snapshot_id == first.group_snapshot_id
    assert sorted(s.snapshot_id for s in again.snapshots) == sorted(
        s.snapshot_id for s in first.snapshots
    )
    assert again.creation_time == first.creation_time


def test_create_group_reusing_name_for_other_volumes_is_already_exists(ledger: Ledger) -> None:
    name = ledger.name("group")
    ledger.create_group([ledger.create_volume().volume_id], name=name)
    request = csi_pb2.CreateVolumeGroupSnapshotRequest(
        name=name, source_volume_ids=[ledger.create_volume().volume_id]
    )
    _refuse(ledger, request, Code.ALREADY_EXISTS)


def test_get_group_returns_the_group(ledger: Ledger, csi: rpc.Csi) -> None:
    group = ledger.create_group([ledger.create_volume().volume_id for _ in range(2)])
    got = _get(csi, group)
    assert got.group_snapshot_id == group.group_snapshot_id
    assert sorted(s.snapshot_id for s in got.snapshots) == sorted(
        s.snapshot_id for s in group.snapshots
    )
    assert got.creation_time == group.creation_time


def test_get_unknown_group_is_not_found(csi: rpc.Csi) -> None:
    with rpc.refused(Code.NOT_FOUND):
        csi.group.GetVolumeGroupSnapshot(
            csi_pb2.GetVolumeGroupSnapshotRequest(
                group_snapshot_id="csi-conformance-no-such-group",
                snapshot_ids=["csi-conformance-no-such-snapshot"],
            )
        )


def test_delete_group_is_idempotent_and_takes_its_snapshots(
    ledger: Ledger, csi: rpc.Csi, caps: Caps
) -> None:
    group = ledger.create_group([ledger.create_volume().volume_id for _ in range(2)])
    delete = csi_pb2.DeleteVolumeGroupSnapshotRequest(
        group_snapshot_id=group.group_snapshot_id,
        snapshot_ids=[s.snapshot_id for s in group.snapshots],
    )
    csi.group.DeleteVolumeGroupSnapshot(delete)
    csi.group.DeleteVolumeGroupSnapshot(delete)
    with rpc.refused(Code.NOT_FOUND):
        _get(csi, group)
    if caps.controller_has("LIST_SNAPSHOTS"):
        left = {s.snapshot_id for s in group.snapshots} & list_snapshot_ids(csi)
        assert not left, f"member snapshots outlived their group: {sorted(left)}"


def test_delete_group_with_wrong_snapshot_list_is_invalid(ledger: Ledger, csi: rpc.Csi) -> None:
    group = ledger.create_group([ledger.create_volume().volume_id for _ in range(2)])
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.group.DeleteVolumeGroupSnapshot(
            csi_pb2.DeleteVolumeGroupSnapshotRequest(
                group_snapshot_id=group.group_snapshot_id,
                snapshot_ids=[group.snapshots[0].snapshot_id],
            )
        )
    assert _get(csi, group).group_snapshot_id == group.group_snapshot_id, "group was deleted"


def test_member_snapshot_is_deleted_only_with_its_group(
    ledger: Ledger, csi: rpc.Csi, caps: Caps
) -> None:
    """A member that names its group must not be deletable alone (INVALID_ARGUMENT)."""
    group = ledger.create_group([ledger.create_volume().volume_id])
    member = group.snapshots[0]
    if not member.group_snapshot_id:
        pytest.skip("members do not name their group, so they are independent snapshots")
    answer = rpc.outcome(
        lambda: csi.controller.DeleteSnapshot(
            csi_pb2.DeleteSnapshotRequest(snapshot_id=member.snapshot_id)
        )
    )
    allowed = (Code.OK, Code.INVALID_ARGUMENT) if caps.snapshots else (Code.UNIMPLEMENTED,)
    assert answer.code in allowed, f"DeleteSnapshot of a group member answered {answer}"


def test_member_snapshot_restores_its_volume(ledger: Ledger, caps: Caps) -> None:
    """Any member MAY seed a new volume; drivers with snapshots must allow it."""
    payloads = [data.pattern(f"member-{i}", 64 * 1024) for i in range(2)]
    volumes = [ledger.create_volume() for _ in payloads]
    for volume, payload in zip(volumes, payloads, strict=True):
        ledger.put(volume, "mount", payload)
    group = ledger.create_group([v.volume_id for v in volumes])
    for volume in volumes:
        ledger.put(volume, "mount", data.pattern("later", 64 * 1024))
    by_source = {s.source_volume_id: s for s in group.snapshots}
    for volume, payload in zip(volumes, payloads, strict=True):
        request = ledger.request(
            source=build.from_snapshot(by_source[volume.volume_id].snapshot_id)
        )
        if not caps.snapshots:
            answer = rpc.outcome(lambda request=request: ledger.create(request))
            if answer.code != Code.OK:
                assert answer.code == Code.INVALID_ARGUMENT, f"restore answered {answer}"
                continue
        restored = ledger.create(request)
        assert ledger.get(restored, "mount", len(payload)) == payload, (
            "restored member does not hold its volume's data at group time"
        )
