"""A fleet is read page by page: every VM once, in order, with its own disks."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from csi_vm import errors, spec
from csi_vm.store import db, records
from tests.support import fleet

pytestmark = pytest.mark.timeout(60)

PAGE = 7


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[db.Store]:
    made = db.Store(tmp_path / "csi-vm.db")
    yield made
    made.close()


@pytest.mark.parametrize(
    "count", [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 3 * PAGE + 2], ids=lambda n: f"{n}-vms"
)
def test_pages_hold_every_vm_once_in_order(store: db.Store, count: int) -> None:
    fleet.seed(store, count=count)
    pages = list(records.summary_pages(store, size=PAGE))
    names = [vm.name for page in pages for vm in page]
    assert names == [fleet.name(i) for i in range(count)]
    assert all(0 < len(page) <= PAGE for page in pages)
    assert len(pages) == -(-count // PAGE)


@pytest.mark.parametrize(
    "count", [0, 2, 3, 4, 3 + PAGE, 3 + 2 * PAGE + 1], ids=lambda n: f"{n}-vms"
)
def test_a_short_first_page_then_full_ones(store: db.Store, count: int) -> None:
    fleet.seed(store, count=count)
    pages = list(records.summary_pages(store, size=PAGE, first=3))
    assert [vm.name for page in pages for vm in page] == [fleet.name(i) for i in range(count)]
    sizes = [len(page) for page in pages]
    assert sizes[:1] == ([min(count, 3)] if count else [])
    assert all(0 < n <= PAGE for n in sizes[1:])
    assert len(pages) == (count > 0) + -(-max(count - 3, 0) // PAGE)


def test_each_vm_of_a_page_has_its_own_disks_and_sizes(store: db.Store) -> None:
    fleet.seed(store, count=2 * PAGE)
    for page in records.summary_pages(store, size=PAGE):
        for vm in page:
            assert [(d.vm, d.name) for d in vm.disks] == [(vm.name, "root"), (vm.name, "data")]
            assert [d.volume_id for d in vm.disks] == [f"seed-{vm.name}-{d}" for d in fleet.DISKS]
            assert (vm.vcpus, vm.memory_mib) == (1, 256)


def test_a_summary_is_what_the_full_record_says(store: db.Store) -> None:
    vm_spec = spec.VMSpec.model_validate(
        {
            "name": "big",
            "vcpus": 8,
            "memory_mib": 16384,
            "disks": [{"name": "root", "size": 4096, "driver": "local", "mode": "filesystem"}],
        }
    )
    disk = records.Disk(
        vm="big", name="root", driver="local", mode=spec.Mode.FILESYSTEM, size=4096, volume_id="v"
    )
    with store.transaction() as cur:
        records.insert_vm(cur, vm_spec=vm_spec, disks=[disk])
    fleet.seed(store, count=3)
    full = records.list_vms(store)
    listed = [vm for page in records.summary_pages(store, size=2) for vm in page]
    assert listed == [records.summary(vm) for vm in full]
    assert [records.get_summary(store, vm.name) for vm in full] == listed
    with pytest.raises(errors.NotFound, match="no VM named 'gone'"):
        records.get_summary(store, "gone")
    assert listed[0] == records.Summary(name="big", vcpus=8, memory_mib=16384, disks=(disk,))


def test_vms_made_and_deleted_while_listing_leave_the_others_exactly_once(
    store: db.Store,
) -> None:
    fleet.seed(store, count=4 * PAGE)
    seen = []
    for number, page in enumerate(records.summary_pages(store, size=PAGE)):
        seen += [vm.name for vm in page]
        if number == 1:
            # Behind the listing, ahead of it, and one already listed.
            fleet.seed(store, count=1, start=10_000)
            with store.transaction() as cur:
                records.delete_vm(cur, fleet.name(PAGE + 1))
                records.delete_vm(cur, fleet.name(3 * PAGE))
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert fleet.name(PAGE + 1) in seen  # listed before it went
    assert fleet.name(3 * PAGE) not in seen
    assert fleet.name(10_000) in seen
    kept = {fleet.name(i) for i in range(4 * PAGE)} - {fleet.name(3 * PAGE)}
    assert kept <= set(seen)


@pytest.mark.parametrize("each", [1, 3], ids=["one-round", "three-rounds"])
def test_snapshot_pages_hold_every_snapshot_once_oldest_first(store: db.Store, each: int) -> None:
    # Rounds of snapshots taken in the same second span page edges.
    fleet.seed(store, count=2 * PAGE + 3)
    taken = fleet.seed_snapshots(store, vms=2 * PAGE + 3, each=each)
    pages = list(records.snapshot_pages(store, size=PAGE))
    assert [s.name for page in pages for s in page] == taken
    assert all(0 < len(page) <= PAGE for page in pages)
    for snap in (s for page in pages for s in page):
        assert [d.object_id for d in snap.disks] == [f"{snap.name}-{d}" for d in fleet.DISKS]
        assert snap.vm_spec.name == snap.vm


def test_snapshot_pages_of_one_vm(store: db.Store) -> None:
    fleet.seed(store, count=3)
    fleet.seed_snapshots(store, vms=3, each=2 * PAGE + 1)
    vm = fleet.name(1)
    mine = [s.name for page in records.snapshot_pages(store, vm, size=PAGE) for s in page]
    assert mine == [f"{vm}-snap-{k}" for k in range(2 * PAGE + 1)]
    assert [s.name for s in records.list_snapshots(store, vm)] == mine
    assert list(records.snapshot_pages(store, "no-such-vm", size=PAGE)) == []
