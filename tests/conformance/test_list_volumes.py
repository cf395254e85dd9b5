"""ListVolumes: contents, pagination with max_entries and next_token, bad tokens."""

from __future__ import annotations

import pytest

from csi_vm.csi.pb import csi_pb2

from . import rpc
from .caps import Caps
from .ledger import Ledger
from .listing import list_volume_ids
from .target import Target, require

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code


@pytest.fixture(autouse=True)
def _needs_listing(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "list-volumes",
        caps.controller_has("LIST_VOLUMES"),
        "controller lacks LIST_VOLUMES (its refusal is checked in test_capability_rules)",
    )


def _list(csi: rpc.Csi, max_entries: int = 0, token: str = "") -> csi_pb2.ListVolumesResponse:
    return csi.controller.ListVolumes(
        csi_pb2.ListVolumesRequest(max_entries=max_entries, starting_token=token)
    )


def test_list_shows_created_volumes_and_hides_deleted_ones(ledger: Ledger, csi: rpc.Csi) -> None:
    kept = ledger.create_volume()
    gone = ledger.create_volume()
    entries = {e.volume.volume_id: e.volume for e in _list(csi).entries}
    for volume in (kept, gone):
        assert volume.volume_id in entries, f"created volume {volume.volume_id} not listed"
        assert entries[volume.volume_id].capacity_bytes == volume.capacity_bytes
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=gone.volume_id))
    listed = list_volume_ids(csi)
    assert gone.volume_id not in listed, "deleted volume still listed"
    assert kept.volume_id in listed


def test_list_entries_carry_status_when_advertised(
    ledger: Ledger, csi: rpc.Csi, caps: Caps
) -> None:
    nodes = caps.controller_has("LIST_VOLUMES_PUBLISHED_NODES")
    condition = caps.controller_has("VOLUME_CONDITION")
    if not (nodes or condition):
        pytest.skip("neither LIST_VOLUMES_PUBLISHED_NODES nor VOLUME_CONDITION is advertised")
    volume = ledger.create_volume()
    entry = next(e for e in _list(csi).entries if e.volume.volume_id == volume.volume_id)
    assert entry.HasField("status"), "status is required with these capabilities"
    if condition:
        assert entry.status.HasField("volume_condition")
        assert not entry.status.volume_condition.abnormal, entry.status.volume_condition.message


@pytest.mark.parametrize("max_entries", [1, 2, 3])
def test_pages_respect_max_entries_and_cover_everything(
    ledger: Ledger, csi: rpc.Csi, max_entries: int
) -> None:
    ours = {ledger.create_volume().volume_id for _ in range(3)}
    everything = list_volume_ids(csi)
    seen: list[str] = []
    token = ""
    for _ in range(len(everything) + 2):
        page = _list(csi, max_entries, token)
        assert len(page.entries) <= max_entries, (
            f"{len(page.entries)} entries returned for max_entries={max_entries}"
        )
        seen.extend(e.volume.volume_id for e in page.entries)
        token = page.next_token
        if not token:
            break
    else:
        pytest.fail("next_token never ran out")
    assert len(seen) == len(set(seen)), f"a volume was listed twice: {seen}"
    assert set(seen) == everything
    assert ours <= set(seen)


def test_first_page_has_token_when_more_entries_exist(ledger: Ledger, csi: rpc.Csi) -> None:
    for _ in range(2):
        ledger.create_volume()
    page = _list(csi, max_entries=1)
    assert len(page.entries) == 1
    assert page.next_token, "more volumes exist than max_entries, but next_token is empty"


@pytest.mark.parametrize(
    "token", ["csi-conformance-not-a-token", "999999999"], ids=["garbage", "past-the-end"]
)
def test_invalid_starting_token_is_aborted(ledger: Ledger, csi: rpc.Csi, token: str) -> None:
    ledger.create_volume()
    with rpc.refused(Code.ABORTED):
        _list(csi, token=token)


def test_negative_max_entries_is_invalid(csi: rpc.Csi) -> None:
    with rpc.refused(Code.INVALID_ARGUMENT):
        _list(csi, max_entries=-1)


def test_token_survives_deletion_of_the_entry_before_it(ledger: Ledger, csi: rpc.Csi) -> None:
    """A CO keeps paging while volumes come and go; the token it holds stays usable."""
    ours = {ledger.create_volume().volume_id for _ in range(3)}
    token = ""
    for _ in range(len(list_volume_ids(csi)) + 1):
        page = _list(csi, 1, token)
        token = page.next_token
        if page.entries[0].volume.volume_id in ours and token:
            break
        assert token, "walked all pages without meeting one of the test's volumes"
    deleted = page.entries[0].volume.volume_id
    csi.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=deleted))
    rest: list[str] = []
    while token:
        page = _list(csi, 1, token)
        rest.extend(e.volume.volume_id for e in page.entries)
        token = page.next_token
        assert len(rest) <= len(ours) + len(list_volume_ids(csi)), "paging does not end"
    assert deleted not in rest, "a deleted volume came back on a later page"
