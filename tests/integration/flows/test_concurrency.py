"""Operations on one VM are serialized through the store; different VMs run in parallel."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable

import pytest

from csi_vm import errors, spec
from csi_vm.flows import snapshots, vms
from csi_vm.store import journal, records
from tests.integration.flows.conftest import MIB, Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _vm(lab: Lab, name: str) -> None:
    vms.create(
        lab.env,
        spec.VMSpec.model_validate(
            {"name": name, "disks": [{"name": "root", "size": MIB, "driver": "local"}]}
        ),
    )


def test_same_vm_waits_other_vms_run(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    for name in ("a", "b", "c", "d"):
        _vm(lab, name)
    jobs = [("a", f"s{i}") for i in range(4)] + [(vm, "s0") for vm in ("b", "c", "d")]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(snapshots.create, lab.env, vm_name=vm, name=f"{vm}-{snap}")
            for vm, snap in jobs
        ]
        for future in futures:
            future.result()
    assert sorted(s.name for s in records.list_snapshots(lab.env.store)) == sorted(
        f"{vm}-{snap}" for vm, snap in jobs
    )
    assert lab.env.store.connection().execute("SELECT COUNT(*) FROM vm_locks").fetchone()[0] == 0


def test_a_held_lock_makes_the_next_flow_wait(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    _vm(lab, "a")
    journal.begin(lab.env.store, flow_id="holder", kind="test", vm="a", args={})
    released = threading.Event()

    def release() -> None:
        time.sleep(0.5)
        journal.end(lab.env.store, flow_id="holder", state=journal.DONE)
        released.set()

    threading.Thread(target=release).start()
    snapshots.create(lab.env, vm_name="a", name="after")
    assert released.is_set()
    with pytest.raises(errors.Busy, match="busy"):
        journal.begin(lab.env.store, flow_id="h2", kind="test", vm="a", args={})
        journal.begin(lab.env.store, flow_id="h3", kind="test", vm="a", args={}, wait=0.2)
