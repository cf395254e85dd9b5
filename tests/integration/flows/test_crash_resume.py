"""kill -9 at every journaled step of every flow, then resume: consistent, no orphans, data intact.

Runs the real `csi-vm` command; under the crash tests' hook (tests.support.crash,
N in its CSI_VM_CRASH_AT) the process SIGKILLs itself right before its N-th
journaled step, so every step boundary is hit deterministically.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Callable

import pytest
import yaml

from csi_vm.flows import offline_disk
from csi_vm.store import journal, records
from tests.integration.flows.conftest import MIB, Lab, pattern_image
from tests.support import crash

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SIZE = 4 * MIB
FALLBACKS = ("snapshot", "clone", "expansion")


def _run(
    lab: Lab, args: list[str], crash_at: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = lab.cli_env()
    if crash_at is not None:
        env[crash.ENV] = str(crash_at)
    return subprocess.run(
        crash.command(*args) if crash_at is not None else [sys.executable, "-m", "csi_vm", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _vm_file(lab: Lab, name: str, image: pathlib.Path) -> pathlib.Path:
    path = lab.tmp / f"{name}.yaml"
    disk = {"name": "root", "size": SIZE, "driver": "local", "source": {"image": str(image)}}
    path.write_text(yaml.safe_dump({"name": name, "disks": [disk]}))
    return path


def _export(lab: Lab, vm: str) -> bytes:
    out = lab.tmp / f"check-{vm}.raw"
    out.unlink(missing_ok=True)
    offline_disk.export(lab.env, vm=vm, disk="root", file=out, fmt="raw")
    return out.read_bytes()


# (name, setup commands, the command to crash, what must hold after success)
FLOWS = {
    "vm-create": ([], ["vm", "create", "-f", "{vm2_file}"]),
    "snapshot": ([], ["snapshot", "create", "vm1", "--name", "s1"]),
    "restore-as": (
        [["snapshot", "create", "vm1", "--name", "s1"]],
        ["snapshot", "restore", "s1", "--as", "vm2"],
    ),
    "restore-in-place": (
        [["snapshot", "create", "vm1", "--name", "s1"]],
        ["snapshot", "restore", "s1"],
    ),
    "clone": ([], ["clone", "vm1", "vm2"]),
    "expand": ([], ["disk", "expand", "vm1", "root", "8MiB"]),
    "import": ([], ["disk", "import", "vm1", "root", "{image_b}"]),
    "snapshot-delete": (
        [["snapshot", "create", "vm1", "--name", "s1"]],
        ["snapshot", "delete", "s1"],
    ),
    "vm-delete": ([], ["vm", "delete", "vm1"]),
}


@pytest.mark.parametrize("fallback", [False, True], ids=["native", "fallback"])
@pytest.mark.parametrize("flow", sorted(FLOWS), ids=sorted(FLOWS))
def test_kill_at_every_step_then_resume(
    flow: str, fallback: bool, lab_factory: Callable[..., Lab]
) -> None:
    lab = lab_factory(FALLBACKS if fallback else ())
    image_a, image_b = lab.tmp / "a.raw", lab.tmp / "b.raw"
    want_a = pattern_image(image_a, size=SIZE, seed=1)
    pattern_image(image_b, size=SIZE, seed=2)
    files = {"vm2_file": str(_vm_file(lab, "vm2", image_a)), "image_b": str(image_b)}
    setup, command = FLOWS[flow]
    assert _run(lab, ["vm", "create", "-f", str(_vm_file(lab, "vm1", image_a))]).returncode == 0
    for args in setup:
        assert _run(lab, args).returncode == 0
    command = [part.format(**files) for part in command]
    start_inventory = lab.inventory()
    start_vms = _vm_table(lab)

    crashes = 0
    for step in range(1, 60):
        result = _run(lab, command, crash_at=step)
        if result.returncode == 0:
            break
        assert result.returncode == -9, result.stderr
        crashes += 1
        resumed = _run(lab, ["resume"])
        assert resumed.returncode == 0, resumed.stderr
        assert not journal.interrupted(lab.env.store)
        assert _locks(lab) == 0
        assert lab.inventory() == _referenced(lab), "orphaned or missing CSI objects"
        # Rolled back (before the commit) or completed (after it): either the
        # starting state exactly, or what a successful run leaves.
        if _vm_table(lab) == start_vms and lab.inventory() == start_inventory:
            continue
        _assert_completed(lab, flow, want_a)
        if flow in IN_PLACE:
            return  # every step before the commit rolled back cleanly; this one completed
        _undo_completion(lab, flow)
        assert lab.inventory() == start_inventory
    else:
        pytest.fail("the flow never completed")
    assert crashes >= 2, "the crash hook did not stop the flow"
    _assert_completed(lab, flow, want_a)
    assert lab.inventory() == _referenced(lab)
    assert _locks(lab) == 0


# Flows that change the starting VM itself: once one completes, there is no
# way back to the starting state to try the next crash point.
IN_PLACE = ("restore-in-place", "expand", "import", "snapshot-delete", "vm-delete")


def _referenced(lab: Lab) -> tuple[set[str], set[str]]:
    """The CSI objects the store knows about: all that may exist on the driver."""
    volumes = {d.volume_id for vm in records.list_vms(lab.env.store) for d in vm.disks}
    snaps: set[str] = set()
    for snap in records.list_snapshots(lab.env.store):
        for d in snap.disks:
            (volumes if d.strategy == "host-copy" else snaps).add(d.object_id)
    return volumes, snaps


def _vm_table(lab: Lab) -> list[tuple[str, tuple[tuple[str, str, int], ...]]]:
    return [
        (vm.name, tuple((d.name, d.volume_id, d.size) for d in vm.disks))
        for vm in records.list_vms(lab.env.store)
    ]


def _locks(lab: Lab) -> int:
    return int(lab.env.store.connection().execute("SELECT COUNT(*) FROM vm_locks").fetchone()[0])


def _assert_completed(lab: Lab, flow: str, want_a: bytes) -> None:
    names = {vm.name for vm in records.list_vms(lab.env.store)}
    snaps = {s.name for s in records.list_snapshots(lab.env.store)}
    if flow in ("vm-create", "restore-as", "clone"):
        assert "vm2" in names and _export(lab, "vm2") == want_a
    elif flow == "snapshot":
        assert "s1" in snaps
    elif flow == "restore-in-place":
        assert _export(lab, "vm1") == want_a
    elif flow == "expand":
        assert records.get_vm(lab.env.store, "vm1").disk("root").size == 8 * MIB
        assert _export(lab, "vm1")[:SIZE] == want_a
    elif flow == "import":
        assert _export(lab, "vm1") != want_a
    elif flow == "snapshot-delete":
        assert "s1" not in snaps
    elif flow == "vm-delete":
        assert "vm1" not in names


def _undo_completion(lab: Lab, flow: str) -> None:
    """Bring the lab back to the start so the next crash point starts the same way."""
    args = ["snapshot", "delete", "s1"] if flow == "snapshot" else ["vm", "delete", "vm2"]
    assert _run(lab, args).returncode == 0
