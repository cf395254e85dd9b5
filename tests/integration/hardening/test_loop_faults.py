"""A published volume's loop device loses its backing while a host copy runs.

The local driver serves block volumes as loop devices. Another actor (an
operator's `losetup -d`, a stray cleanup script, a backing file shrunk on the
host) can take the backing away while csi-vm copies: a detached loop device
that nobody holds open reads as an empty device, one that is held open is
only marked for autoclear, and a truncated backing file made visible with
`losetup -c` makes I/O past the new end fail. The rule: never a silent
success with wrong data; the copy either completes with data that is checked
afterwards or rolls back with one line naming the disk; nothing is left
behind and the source VM's data is untouched.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Callable

import pytest

from csi_vm import errors
from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.flows import offline_disk, snapshots, vms
from tests.integration.hardening.conftest import ProxyLab, settle
from tests.support import reliability

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FALLBACKS = ("snapshot", "clone", "expansion")
FAULT = "loop-device-lost-backing"


def _published_loop(lab: ProxyLab, nth: int) -> str:
    """The loop device behind the nth NodePublishVolume of the recorded requests (1-based)."""
    assert lab.proxy.requests is not None
    raw = [r for m, r in lab.proxy.requests if m == "NodePublishVolume"][nth - 1]
    target = pb.NodePublishVolumeRequest.FromString(raw).target_path
    rdev = os.stat(target).st_rdev
    name = pathlib.Path(f"/sys/dev/block/{os.major(rdev)}:{os.minor(rdev)}").resolve().name
    assert name.startswith("loop"), name
    return f"/dev/{name}"


def _detach(device: str) -> None:
    """losetup -d: at once when nobody holds the device, else at its last close."""
    subprocess.run(["losetup", "--detach", device], check=True, capture_output=True)


def _shrink(device: str, *, to: int) -> None:
    """Truncate the backing file under the device, then make the device see it (losetup -c)."""
    backing = pathlib.Path(f"/sys/block/{pathlib.Path(device).name}/loop/backing_file")
    os.truncate(backing.read_text().strip(), to)
    subprocess.run(["losetup", "--set-capacity", device], check=True, capture_output=True)


def _once_copy_starts(lab: ProxyLab, fault: Callable[[], None]) -> None:
    """Run `fault` when the copy reports its first progress: both devices are open then."""
    fired: list[bool] = []

    def progress(what: str, done: int, total: int) -> None:
        if not fired:
            fired.append(True)
            fault()

    lab.env.progress = progress


def _check(lab: ProxyLab, before: tuple[set[str], set[str]], *, outcome: str) -> None:
    via_resume = settle(lab)
    lab.assert_consistent()
    for disk, want in lab.want.items():
        assert lab.export("vm1", disk) == want, f"vm1/{disk} changed"
    if outcome == reliability.COMPLETED:
        for disk, want in lab.want.items():
            assert lab.export("vm2", disk) == want, f"the clone's {disk} differs from its source"
        vms.delete(lab.env, name="vm2")
    assert lab.inventory() == before
    assert not _loops_of(lab), "a loop device of the driver's state dir is left"
    reliability.record(FAULT, outcome, via_resume=via_resume)


def _loops_of(lab: ProxyLab) -> list[str]:
    """Loop devices still backed by files of this lab's driver (nothing is published now)."""
    state = str(lab.driver.state_dir.resolve())
    found = []
    for backing in pathlib.Path("/sys/block").glob("loop*/loop/backing_file"):
        if backing.read_text().strip().startswith(state):
            found.append(backing.parent.parent.name)
    return found


def _clone_fails(lab: ProxyLab) -> str:
    with pytest.raises(errors.CsiVmError) as caught:
        vms.clone(lab.env, source="vm1", target="vm2")
    message = str(caught.value)
    assert "\n" not in message
    assert "root" in message, f"the error does not name the disk: {message}"
    return message


@pytest.mark.parametrize("publish", [1, 2], ids=["source", "target"])
def test_loop_detached_before_the_copy_rolls_back(
    publish: int, proxy_lab_factory: Callable[..., ProxyLab]
) -> None:
    """Detached while nobody holds it: the device reads as 0 bytes. Before the
    size check, a detached source made the clone "complete" with an empty disk."""
    lab = proxy_lab_factory(FALLBACKS)
    vms.create(lab.env, lab.spec("vm1"))
    before = lab.inventory()
    lab.proxy.requests = []
    # The clone publishes the source volume, then the new one; both exist when
    # the device goes, so `losetup --find` cannot hand the freed one to the target.
    lab.proxy.after_call(
        "NodePublishVolume",
        lambda: lab.proxy.after_call(
            "NodePublishVolume", lambda: _detach(_published_loop(lab, publish))
        ),
    )
    message = _clone_fails(lab)
    assert "bytes" in message, message
    _check(lab, before, outcome=reliability.ROLLED_BACK)


def test_target_backing_shrunk_mid_copy_rolls_back(
    proxy_lab_factory: Callable[..., ProxyLab],
) -> None:
    """The new volume's backing file cut to 1 MiB while the copy writes: I/O past the end fails."""
    lab = proxy_lab_factory(FALLBACKS)
    vms.create(lab.env, lab.spec("vm1"))
    before = lab.inventory()
    lab.proxy.requests = []
    _once_copy_starts(lab, lambda: _shrink(_published_loop(lab, 2), to=1024 * 1024))
    _clone_fails(lab)
    _check(lab, before, outcome=reliability.ROLLED_BACK)


@pytest.mark.parametrize("publish", [1, 2], ids=["source", "target"])
def test_loop_detached_while_the_copy_holds_it(
    publish: int, proxy_lab_factory: Callable[..., ProxyLab]
) -> None:
    """Detached while open: the kernel keeps it until the copy closes it, so the
    copy may complete; the clone's data is then compared with the source."""
    lab = proxy_lab_factory(FALLBACKS)
    vms.create(lab.env, lab.spec("vm1"))
    before = lab.inventory()
    lab.proxy.requests = []
    _once_copy_starts(lab, lambda: _detach(_published_loop(lab, publish)))
    try:
        vms.clone(lab.env, source="vm1", target="vm2")
    except errors.CsiVmError as err:
        assert "\n" not in str(err)
        outcome = reliability.ROLLED_BACK
    else:
        outcome = reliability.COMPLETED
    _check(lab, before, outcome=outcome)


def test_export_of_a_detached_loop_device_is_refused(
    proxy_lab_factory: Callable[..., ProxyLab],
) -> None:
    """An export must not write an empty file from a device that lost its backing."""
    lab = proxy_lab_factory(FALLBACKS)
    vms.create(lab.env, lab.spec("vm1"))
    before = lab.inventory()
    lab.proxy.requests = []
    lab.proxy.after_call("NodePublishVolume", lambda: _detach(_published_loop(lab, 1)))
    out = lab.tmp / "exported.raw"
    with pytest.raises(errors.CsiVmError) as caught:
        offline_disk.export(lab.env, vm="vm1", disk="root", file=out, fmt="raw")
    assert "\n" not in str(caught.value)
    assert "root" in str(caught.value), str(caught.value)
    assert not out.exists()
    _check(lab, before, outcome=reliability.ROLLED_BACK)


def test_snapshot_host_copy_with_a_detached_source_rolls_back(
    proxy_lab_factory: Callable[..., ProxyLab],
) -> None:
    """The snapshot fallback copies the same way: no empty snapshot is recorded.

    Detached right after its publish, the source's loop device is free when
    the target is attached, and `losetup --find` hands it to the target: the
    source path then shows the target's data. The engine refuses a copy of a
    device onto itself; the size check alone would not have caught this.
    """
    lab = proxy_lab_factory(FALLBACKS)
    vms.create(lab.env, lab.spec("vm1"))
    before = lab.inventory()
    lab.proxy.requests = []
    lab.proxy.after_call("NodePublishVolume", lambda: _detach(_published_loop(lab, 1)))
    with pytest.raises(errors.CsiVmError) as caught:
        snapshots.create(lab.env, vm_name="vm1", name="s1")
    assert "\n" not in str(caught.value)
    _check(lab, before, outcome=reliability.ROLLED_BACK)
