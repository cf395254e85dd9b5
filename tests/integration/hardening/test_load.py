"""Load: 100 concurrent operations across 50 VMs while the driver restarts twice.

Every operation ends in success or a clean rollback (an error of the csi-vm
tree, nothing else); after `resume` the store and the driver agree exactly,
no lock or flow is left, and VMs no operation touched read back byte for byte.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time
from collections.abc import Callable

import pytest

from csi_vm import errors, spec
from csi_vm.flows import offline_disk, snapshots, vms
from tests.integration.flows.conftest import MIB, pattern_image
from tests.integration.hardening.conftest import ProxyLab, settle
from tests.support import reliability

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

VMS = 50
UNTOUCHED = 5  # the last five VMs hold known data and no operation touches them
OPERATIONS = 100
WORKERS = 16
DISK = 2 * MIB


def _create(lab: ProxyLab, index: int) -> bytes:
    name = f"vm{index}"
    disk: dict[str, object] = {"name": "root", "size": DISK, "driver": "local"}
    want = b""
    if index >= VMS - UNTOUCHED:
        image = lab.tmp / f"{name}.raw"
        want = pattern_image(image, size=DISK, seed=index, extents=4)
        disk["source"] = {"image": str(image)}
    vms.create(lab.env, spec.VMSpec.model_validate({"name": name, "disks": [disk]}))
    return want


def _operation(lab: ProxyLab, number: int, rng: random.Random) -> Callable[[], object]:
    vm = f"vm{rng.randrange(VMS - UNTOUCHED)}"
    kind = rng.choice(("snapshot", "clone", "expand", "delete"))
    if kind == "snapshot":
        return lambda: snapshots.create(lab.env, vm_name=vm, name=f"s{number}")
    if kind == "clone":
        return lambda: vms.clone(lab.env, source=vm, target=f"c{number}")
    if kind == "expand":
        return lambda: offline_disk.expand(lab.env, vm=vm, disk="root", size=DISK + number * MIB)
    return lambda: vms.delete(lab.env, name=vm)


class Restarter:
    """Restarts the driver when 20 and then 55 operations have ended: mid-run, every time."""

    AT = (20, 55)

    def __init__(self, lab: ProxyLab) -> None:
        self._lab = lab
        self._ended = 0
        self._cond = threading.Condition()
        self.restarted_at: list[int] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def run(self, call: Callable[[], object]) -> str:
        try:
            call()
            outcome = reliability.COMPLETED
        except errors.Rejected:
            outcome = reliability.REFUSED  # e.g. an operation on a VM deleted just before
        except errors.CsiVmError:
            outcome = reliability.ROLLED_BACK  # anything else propagates and fails the test
        with self._cond:
            self._ended += 1
            self._cond.notify_all()
        return outcome

    def _loop(self) -> None:
        for at in self.AT:
            with self._cond:
                self._cond.wait_for(lambda: self._ended >= at, timeout=240)  # noqa: B023
                self.restarted_at.append(self._ended)
            self._lab.driver.restart()

    def join(self) -> None:
        self._thread.join(120)


def test_100_operations_50_vms_two_restarts(proxy_lab_factory: Callable[..., ProxyLab]) -> None:
    # A loaded 2-core machine answers slower: the per-call deadline of the fault
    # tests would turn load into timeouts.
    lab = proxy_lab_factory(driver_extra={"timeout": 20})
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        wants = list(pool.map(lambda i: _create(lab, i), range(VMS)))
    rng = random.Random(7)
    calls = [_operation(lab, n, rng) for n in range(OPERATIONS)]
    restarter = Restarter(lab)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(restarter.run, calls))
    restarter.join()
    assert len(restarter.restarted_at) == 2 and max(restarter.restarted_at) < OPERATIONS
    settle(lab)
    lab.assert_consistent()
    for index in range(VMS - UNTOUCHED, VMS):
        assert lab.export(f"vm{index}", "root") == wants[index], f"vm{index} lost data"
    for outcome in set(outcomes):
        reliability.record("load-100-ops-2-restarts", outcome, count=outcomes.count(outcome))
    assert outcomes.count(reliability.COMPLETED) > OPERATIONS // 2, (
        f"{outcomes.count(reliability.COMPLETED)} of {OPERATIONS} completed "
        f"in {time.monotonic() - started:.0f} s"
    )
