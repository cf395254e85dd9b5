"""CreateSnapshot, DeleteSnapshot and GetSnapshot."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Callable

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, checks, rpc
from .caps import Caps
from .ledger import Ledger
from .listing import list_snapshot_ids
from .target import Target, require

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code

#: Allowed difference between the driver's clock and the suite's.
CLOCK_SLACK_S = 300
#: Simultaneous identical calls in the concurrency test.
CONCURRENT_CALLS = 8


@pytest.fixture(autouse=True)
def _needs_snapshots(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "snapshot",
        caps.snapshots,
        "controller lacks CREATE_DELETE_SNAPSHOT (its refusal is checked in "
        "test_capability_rules and test_content_source)",
    )


def _refuse(ledger: Ledger, request: csi_pb2.CreateSnapshotRequest, *codes: Code) -> None:
    with rpc.refused(*codes):
        snapshot = ledger.csi.controller.CreateSnapshot(request).snapshot
        ledger.track_snapshot(snapshot.snapshot_id)


def test_create_snapshot_refuses_missing_name(ledger: Ledger) -> None:
    volume = ledger.create_volume()
    _refuse(
        ledger,
        csi_pb2.CreateSnapshotRequest(source_volume_id=volume.volume_id),
        Code.INVALID_ARGUMENT,
    )


def test_create_snapshot_refuses_missing_source(ledger: Ledger) -> None:
    _refuse(ledger, csi_pb2.CreateSnapshotRequest(name=ledger.name("snap")), Code.INVALID_ARGUMENT)


def test_create_snapshot_of_unknown_volume_is_not_found(ledger: Ledger) -> None:
    request = ledger.snapshot_request("csi-conformance-no-such-volume")
    _refuse(ledger, request, Code.NOT_FOUND)


def test_create_snapshot_returns_a_snapshot(ledger: Ledger) -> None:
    volume = ledger.create_volume()
    before = time.time()
    snapshot = ledger.create_snapshot(volume.volume_id)
    after = time.time()
    assert snapshot.snapshot_id, "snapshot_id is required"
    assert snapshot.source_volume_id == volume.volume_id
    assert snapshot.HasField("creation_time"), "creation_time is required"
    taken = snapshot.creation_time.ToDatetime().timestamp()
    assert before - CLOCK_SLACK_S <= taken <= after + CLOCK_SLACK_S, (
        f"creation_time {snapshot.creation_time.ToJsonString()} is not when the snapshot was cut"
    )
    assert snapshot.size_bytes >= 0
    if snapshot.size_bytes and volume.capacity_bytes:
        # A volume restored from the snapshot may not be smaller than the snapshot.
        assert snapshot.size_bytes <= volume.capacity_bytes, "snapshot larger than its source"
    assert not snapshot.group_snapshot_id, "a lone snapshot claims to be in a group"


def test_create_snapshot_is_idempotent(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    request = ledger.snapshot_request(volume.volume_id)
    first = csi.controller.CreateSnapshot(request).snapshot
    ledger.track_snapshot(first.snapshot_id)
    checks.same_snapshot(first, csi.controller.CreateSnapshot(request).snapshot)
    other = ledger.create_snapshot(volume.volume_id)
    assert other.snapshot_id != first.snapshot_id, "two snapshot names gave one snapshot"


def test_create_snapshot_reusing_name_for_other_volume_is_already_exists(ledger: Ledger) -> None:
    first = ledger.create_volume()
    other = ledger.create_volume()
    name = ledger.name("snap")
    ledger.create_snapshot(first.volume_id, name=name)
    _refuse(ledger, ledger.snapshot_request(other.volume_id, name), Code.ALREADY_EXISTS)


NAMES: dict[str, Callable[[], str]] = {
    "128-bytes": lambda: (f"csi-conformance-{uuid.uuid4().hex}" * 4)[:128],
    "slashes-and-dots": lambda: f"csi-conformance/../../{uuid.uuid4().hex[:8]}/.",
}


@pytest.mark.parametrize("make_name", NAMES.values(), ids=NAMES.keys())
def test_create_snapshot_accepts_any_valid_name(
    ledger: Ledger, make_name: Callable[[], str]
) -> None:
    volume = ledger.create_volume()
    name = make_name()
    first = ledger.create_snapshot(volume.volume_id, name=name)
    checks.same_snapshot(first, ledger.create_snapshot(volume.volume_id, name=name))


def test_delete_snapshot_refuses_missing_id(csi: rpc.Csi) -> None:
    with rpc.refused(Code.INVALID_ARGUMENT):
        csi.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest())


def test_delete_of_unknown_snapshot_succeeds(csi: rpc.Csi) -> None:
    csi.controller.DeleteSnapshot(
        csi_pb2.DeleteSnapshotRequest(snapshot_id=f"csi-conformance-unknown-{uuid.uuid4().hex}")
    )


def test_delete_snapshot_is_idempotent_and_final(ledger: Ledger, csi: rpc.Csi, caps: Caps) -> None:
    volume = ledger.create_volume()
    snapshot = ledger.create_snapshot(volume.volume_id)
    delete = csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id)
    csi.controller.DeleteSnapshot(delete)
    csi.controller.DeleteSnapshot(delete)
    if caps.controller_has("LIST_SNAPSHOTS"):
        assert snapshot.snapshot_id not in list_snapshot_ids(csi)
    if caps.controller_has("GET_SNAPSHOT"):
        with rpc.refused(Code.NOT_FOUND):
            csi.controller.GetSnapshot(csi_pb2.GetSnapshotRequest(snapshot_id=snapshot.snapshot_id))
    ledger.refuse_create(
        ledger.request(source=build.from_snapshot(snapshot.snapshot_id)), Code.NOT_FOUND
    )


def test_snapshot_outlives_its_source_or_protects_it(
    ledger: Ledger, csi: rpc.Csi, caps: Caps
) -> None:
    """Deleting a snapshotted volume either leaves the snapshot usable or is refused."""
    volume = ledger.create_volume()
    snapshot = ledger.create_snapshot(volume.volume_id)
    answer = rpc.outcome(
        lambda: csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id))
    )
    if answer.code == Code.FAILED_PRECONDITION:
        return
    assert answer.code == Code.OK, f"DeleteVolume of a snapshotted volume answered {answer}"
    if caps.controller_has("LIST_SNAPSHOTS"):
        assert snapshot.snapshot_id in list_snapshot_ids(csi), "snapshot vanished with its source"
    restored = ledger.create_volume(source=build.from_snapshot(snapshot.snapshot_id))
    assert restored.volume_id


@pytest.fixture
def get_snapshot(caps: Caps) -> None:
    if not caps.controller_has("GET_SNAPSHOT"):
        pytest.skip(
            "GET_SNAPSHOT not advertised; "
            "its UNIMPLEMENTED answer is checked in test_capability_rules"
        )


@pytest.mark.usefixtures("get_snapshot")
def test_get_snapshot_returns_the_snapshot(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    snapshot = ledger.create_snapshot(volume.volume_id)
    got = csi.controller.GetSnapshot(csi_pb2.GetSnapshotRequest(snapshot_id=snapshot.snapshot_id))
    checks.same_snapshot(snapshot, got.snapshot)
    assert got.snapshot.ready_to_use


@pytest.mark.usefixtures("get_snapshot")
def test_get_unknown_snapshot_is_not_found(csi: rpc.Csi) -> None:
    with rpc.refused(Code.NOT_FOUND):
        csi.controller.GetSnapshot(
            csi_pb2.GetSnapshotRequest(snapshot_id="csi-conformance-no-such-snapshot")
        )


def test_concurrent_snapshots_of_one_name_make_one_snapshot(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    request = ledger.snapshot_request(volume.volume_id)

    def cut() -> csi_pb2.Snapshot:
        snapshot: csi_pb2.Snapshot = csi.controller.CreateSnapshot(request).snapshot
        ledger.track_snapshot(snapshot.snapshot_id)
        return snapshot

    with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENT_CALLS) as pool:
        answers = [
            call.result()
            for call in [pool.submit(rpc.outcome_of, cut) for _ in range(CONCURRENT_CALLS)]
        ]
    codes = {code for code, _ in answers}
    assert codes <= {Code.OK, Code.ABORTED}, f"concurrent snapshots answered {codes}"
    ids = {snapshot.snapshot_id for code, snapshot in answers if code == Code.OK}
    assert len(ids) <= 1, f"one name gave {len(ids)} snapshots"
