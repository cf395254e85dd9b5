"""ListSnapshots: filters by snapshot and by source volume, pagination, bad tokens."""

from __future__ import annotations

import pytest

from csi_vm.csi.pb import csi_pb2

from . import checks, rpc
from .caps import Caps
from .ledger import Ledger
from .listing import list_snapshot_ids
from .target import Target, require

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code


@pytest.fixture(autouse=True)
def _needs_listing(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "snapshot",
        caps.snapshots and caps.controller_has("LIST_SNAPSHOTS"),
        "controller lacks CREATE_DELETE_SNAPSHOT or LIST_SNAPSHOTS "
        "(refusal checked in test_capability_rules)",
    )


def _list(csi: rpc.Csi, **fields: object) -> csi_pb2.ListSnapshotsResponse:
    return csi.controller.ListSnapshots(csi_pb2.ListSnapshotsRequest(**fields))


def test_list_shows_new_snapshots_and_hides_deleted_ones(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    kept = ledger.create_snapshot(volume.volume_id)
    gone = ledger.create_snapshot(volume.volume_id)
    entries = {e.snapshot.snapshot_id: e.snapshot for e in _list(csi).entries}
    for snapshot in (kept, gone):
        assert snapshot.snapshot_id in entries, f"snapshot {snapshot.snapshot_id} not listed"
        checks.same_snapshot(snapshot, entries[snapshot.snapshot_id])
    csi.controller.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id=gone.snapshot_id))
    listed = list_snapshot_ids(csi)
    assert gone.snapshot_id not in listed and kept.snapshot_id in listed


def test_list_by_snapshot_id(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    wanted = ledger.create_snapshot(volume.volume_id)
    ledger.create_snapshot(volume.volume_id)
    entries = _list(csi, snapshot_id=wanted.snapshot_id).entries
    assert [e.snapshot.snapshot_id for e in entries] == [wanted.snapshot_id]
    checks.same_snapshot(wanted, entries[0].snapshot)
    assert entries[0].snapshot.ready_to_use


def test_list_by_unknown_snapshot_id_is_empty(ledger: Ledger, csi: rpc.Csi) -> None:
    ledger.create_snapshot(ledger.create_volume().volume_id)
    assert not _list(csi, snapshot_id="csi-conformance-no-such-snapshot").entries


def test_list_by_source_volume(ledger: Ledger, csi: rpc.Csi) -> None:
    source = ledger.create_volume()
    other = ledger.create_volume()
    ours = {ledger.create_snapshot(source.volume_id).snapshot_id for _ in range(2)}
    ledger.create_snapshot(other.volume_id)
    entries = _list(csi, source_volume_id=source.volume_id).entries
    assert {e.snapshot.snapshot_id for e in entries} == ours
    assert all(e.snapshot.source_volume_id == source.volume_id for e in entries)


def test_list_by_unknown_source_volume_is_empty(ledger: Ledger, csi: rpc.Csi) -> None:
    ledger.create_snapshot(ledger.create_volume().volume_id)
    assert not _list(csi, source_volume_id="csi-conformance-no-such-volume").entries


@pytest.mark.parametrize("max_entries", [1, 2])
def test_pages_respect_max_entries_and_cover_everything(
    ledger: Ledger, csi: rpc.Csi, max_entries: int
) -> None:
    volume = ledger.create_volume()
    ours = {ledger.create_snapshot(volume.volume_id).snapshot_id for _ in range(3)}
    everything = list_snapshot_ids(csi)
    seen: list[str] = []
    token = ""
    for _ in range(len(everything) + 2):
        page = _list(csi, max_entries=max_entries, starting_token=token)
        assert len(page.entries) <= max_entries
        seen.extend(e.snapshot.snapshot_id for e in page.entries)
        token = page.next_token
        if not token:
            break
    else:
        pytest.fail("next_token never ran out")
    assert len(seen) == len(set(seen)), f"a snapshot was listed twice: {seen}"
    assert set(seen) == everything
    assert ours <= set(seen)


def test_pages_of_one_source_volume(ledger: Ledger, csi: rpc.Csi) -> None:
    volume = ledger.create_volume()
    ledger.create_snapshot(ledger.create_volume().volume_id)
    ours = {ledger.create_snapshot(volume.volume_id).snapshot_id for _ in range(3)}
    seen: list[str] = []
    token = ""
    for _ in range(len(ours) + 2):
        page = _list(csi, max_entries=1, starting_token=token, source_volume_id=volume.volume_id)
        assert len(page.entries) <= 1
        seen.extend(e.snapshot.snapshot_id for e in page.entries)
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted(ours)


@pytest.mark.parametrize(
    "token", ["csi-conformance-not-a-token", "999999999"], ids=["garbage", "past-the-end"]
)
def test_invalid_starting_token_is_aborted(ledger: Ledger, csi: rpc.Csi, token: str) -> None:
    ledger.create_snapshot(ledger.create_volume().volume_id)
    with rpc.refused(Code.ABORTED):
        _list(csi, starting_token=token)


def test_negative_max_entries_is_invalid(csi: rpc.Csi) -> None:
    with rpc.refused(Code.INVALID_ARGUMENT):
        _list(csi, max_entries=-1)
