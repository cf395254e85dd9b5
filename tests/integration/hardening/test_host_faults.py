"""Host faults during flows: the driver killed mid-flow, the target filesystem full.

Same rule as for driver faults: the flow completes or rolls back (after
`resume` where a rollback could not reach the driver), nothing is orphaned,
the source VM's data stays byte for byte as imported.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from csi_vm import errors, spec
from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.flows import snapshots, vms
from csi_vm.store import records
from tests.integration.hardening.conftest import ProxyLab, settle
from tests.support import reliability

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: every VM operation through the host-copy fallbacks, so a host copy runs
FALLBACKS = ("snapshot", "clone", "expansion")
DENSE = 16 * 1024 * 1024


def _killer(lab: ProxyLab, delay: float, gap: float = 0.3) -> threading.Thread:
    def kill_and_restart() -> None:
        time.sleep(delay)
        lab.driver.kill()
        time.sleep(gap)  # a real restart leaves a gap the client must ride out
        lab.driver.restart()

    thread = threading.Thread(target=kill_and_restart, daemon=True)
    thread.start()
    return thread


def _source_untouched(lab: ProxyLab) -> None:
    for disk, want in lab.want.items():
        assert lab.export("vm1", disk) == want, f"vm1/{disk} changed"


def _run_flow(lab: ProxyLab, flow: str) -> str:
    try:
        if flow == "clone":
            vms.clone(lab.env, source="vm1", target="vm2")
        else:
            snapshots.create(lab.env, vm_name="vm1", name="s2")
    except errors.CsiVmError as err:
        assert "\n" not in str(err)
        return reliability.ROLLED_BACK
    return reliability.COMPLETED


def _check_after_kill(lab: ProxyLab, flow: str, outcome: str) -> None:
    via_resume = settle(lab)
    lab.assert_consistent()
    _source_untouched(lab)
    if outcome == reliability.COMPLETED:
        _undo(lab, flow)
    assert records.find_vm(lab.env.store, "vm2") is None
    reliability.record("driver-killed-during-host-copy", outcome, via_resume=via_resume)


@pytest.mark.parametrize("flow", ["clone", "snapshot"])
def test_driver_killed_while_host_copy_runs(
    flow: str, proxy_lab_factory: Callable[..., ProxyLab]
) -> None:
    lab = proxy_lab_factory(FALLBACKS)
    vms.create(lab.env, lab.spec("vm1"))
    # At moments in time while the flow runs...
    for delay in (0.0, 0.05, 0.15, 0.4):
        killer = _killer(lab, delay)
        outcome = _run_flow(lab, flow)
        killer.join(60)
        _check_after_kill(lab, flow, outcome)
    # ...and right after each step's answer left the driver, between steps.
    for method in ("CreateVolume", "NodeStageVolume", "NodePublishVolume", "NodeUnstageVolume"):
        killers: list[threading.Thread] = []
        lab.proxy.after_call(method, lambda: killers.append(_killer(lab, 0.0)))  # noqa: B023
        outcome = _run_flow(lab, flow)
        for killer in killers:
            killer.join(60)
        assert killers, f"{method} was never called"
        _check_after_kill(lab, flow, outcome)
    # A driver down longer than the retry budget: the flow rolls back (or
    # `resume` finishes the rollback once the driver is back).
    killers = []
    lab.proxy.after_call("NodeStageVolume", lambda: killers.append(_killer(lab, 0.0, gap=3.0)))
    outcome = _run_flow(lab, flow)
    killers[0].join(60)
    assert outcome == reliability.ROLLED_BACK
    _check_after_kill(lab, flow, outcome)


def _undo(lab: ProxyLab, flow: str) -> None:
    if flow == "clone":
        vms.delete(lab.env, name="vm2")
    else:
        snapshots.delete(lab.env, name="s2")


@pytest.fixture
def tiny_fs(tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    """A 64 MiB filesystem of its own for the driver's state dir, so it can be filled."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: pathlib.Path) -> Callable[[], None]:
    """Another writer takes all free space but 4 MiB, once the target volume exists."""

    def fill() -> None:
        free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
        with (directory / "filler").open("wb") as out:
            out.write(b"\xff" * max(free - 4 * 1024 * 1024, 0))

    return fill


def test_target_filesystem_full_rolls_back(
    tiny_fs: pathlib.Path, proxy_lab_factory: Callable[..., ProxyLab]
) -> None:
    lab = proxy_lab_factory(FALLBACKS, state_dir=tiny_fs / "state")
    vms.create(lab.env, lab.spec("vm1"))
    before = lab.inventory()
    image = lab.tmp / "dense.raw"
    image.write_bytes(b"\x5a" * DENSE)
    disk = {"name": "root", "size": DENSE, "driver": "local", "source": {"image": str(image)}}
    lab.proxy.after_call("CreateVolume", _fill(tiny_fs))
    with pytest.raises(errors.CsiVmError) as caught:
        vms.create(lab.env, spec.VMSpec.model_validate({"name": "full", "disks": [disk]}))
    message = str(caught.value)
    assert "\n" not in message
    # The copy's own error comes first, then the rollback's: the driver's
    # database on the same filesystem is full too, so `resume` finishes it.
    first = message.partition("; then ")[0]
    # Written with O_DIRECT, a loop device passes its backing file's ENOSPC
    # on (the copy engine names it); written through the page cache, the
    # writeback's failure reaches fsync as EIO.
    assert "no space left" in first.lower() or "Input/output error" in first, message
    (tiny_fs / "filler").unlink()
    via_resume = settle(lab)
    lab.assert_consistent()
    assert lab.inventory() == before
    assert [vm.name for vm in records.list_vms(lab.env.store)] == ["vm1"]
    _source_untouched(lab)
    reliability.record("host-enospc-during-copy", reliability.ROLLED_BACK, via_resume=via_resume)


def _vanish(lab: ProxyLab) -> Callable[[], None]:
    """Unmount and remove the target of the latest NodePublishVolume, as a stray cleanup would."""

    def vanish() -> None:
        assert lab.proxy.requests is not None
        raw = [r for m, r in lab.proxy.requests if m == "NodePublishVolume"][-1]
        target = pb.NodePublishVolumeRequest.FromString(raw).target_path
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        pathlib.Path(target).unlink(missing_ok=True)

    return vanish


@pytest.mark.parametrize("publish", [1, 2], ids=["source-node-gone", "target-node-gone"])
def test_device_node_gone_during_host_copy_rolls_back(
    publish: int, proxy_lab_factory: Callable[..., ProxyLab]
) -> None:
    lab = proxy_lab_factory(FALLBACKS)
    vms.create(lab.env, lab.spec("vm1"))
    before = lab.inventory()
    lab.proxy.requests = []
    vanish = _vanish(lab)
    if publish == 1:
        lab.proxy.after_call("NodePublishVolume", vanish)
    else:  # the clone publishes the source first, then the new volume
        lab.proxy.after_call(
            "NodePublishVolume", lambda: lab.proxy.after_call("NodePublishVolume", vanish)
        )
    # Before the check existed, a vanished target became a plain host file:
    # the clone "completed" with an empty disk.
    with pytest.raises(errors.CsiVmError) as caught:
        vms.clone(lab.env, source="vm1", target="vm2")
    assert "\n" not in str(caught.value)
    via_resume = settle(lab)
    lab.assert_consistent()
    assert lab.inventory() == before
    _source_untouched(lab)
    reliability.record("device-node-gone", reliability.ROLLED_BACK, via_resume=via_resume)
