"""Online snapshots of the agent guest: a real qemu-guest-agent, a real ext4 being written.

One guest boot per test, several checks on it in the order a VM lives them:
a frozen snapshot whose copy needs no journal replay, a kill -9 between the
freeze and the thaw that `resume` thaws, an fstrim that frees the volume's
blocks, and last (it leaves the agent stopped for good) an agent that stops
answering, which gives a crash-consistent snapshot that does need a replay.
Before that, a freeze slower than its time-out (a freeze hook that sleeps)
is thawed once the agent is done with it, before the snapshot goes on.
The push backup's guest lives a kill -9 right after the freeze, then an agent
stopped for a while: the snapshot ends while it sleeps, the guest thawed after.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time

import pytest

from csi_vm import errors
from csi_vm.flows import offline_disk, online, vmrun, vms
from csi_vm.store import journal, records, running
from launcher import blockjobs, fscounter
from tests.support import crash, guestagent, reliability

from .conftest import BOOT_LIMIT_S, MIB, Lab
from .conftest import run_cli as _cli
from .test_online import _published

# The native test waits out a freeze hook stuck past every thaw (over 2 min) among
# its other steps; the bound is for a hung test, not a speed check.
pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.timeout(900)]

#: how long the guest keeps its agent stopped: past a snapshot that waits out
#: both agent commands (freeze, thaw) on a loaded host, so it ends first
STALL_S = 60

#: how long the guest's freeze hook takes: past the freeze's time-out, well
#: inside the thaws that follow it (`blockjobs.SETTLE_S`)
SLOW_FREEZE_S = 2 * blockjobs.AGENT_TIMEOUT_S + 5

#: a freeze hook past all of that (the freeze's time-out, the thaws for
#: `blockjobs.SETTLE_S`, the rollback's thaw) with a wide margin on a loaded host
STUCK_FREEZE_S = blockjobs.AGENT_TIMEOUT_S * 2 + int(blockjobs.SETTLE_S) + 60

#: the faults these tests declare for docs/reliability.md
KILLED_AFTER_FREEZE = "csi-vm-killed-between-freeze-and-thaw"
SLOW_FREEZE = "guest-freeze-slower-than-its-time-out"
STUCK_FREEZE = "guest-freeze-stuck-past-every-thaw"
AGENT_GONE = "guest-agent-stopped"
AGENT_STALLED = "guest-agent-stalled"

#: written, deleted and trimmed: far above the few blocks the counter and
#: ext4's own metadata change meanwhile
JUNK_MIB = 8


@pytest.fixture(scope="module")
def agent_boot() -> vmrun.Boot:
    return vmrun.counter_guest(agent=True)


class Guest:
    """The agent guest of one test: its VM name and the counter file's place on its disk."""

    def __init__(self, lab: Lab, boot: vmrun.Boot, *, name: str, driver: str) -> None:
        self.lab, self.name = lab, name
        lab.create_vm(name, driver=driver)
        image = lab.tmp / f"{name}-ext4.raw"
        fscounter.make_image(image, size=64 * MIB)
        offline_disk.import_image(lab.env, vm=name, disk="root", image=image)
        image.unlink()
        vmrun.start(lab.env, vm_name=name, boot=boot)
        self.disk = lab.device(name, node="node-a")
        self.offset = fscounter.record_offset(self.disk)
        self.wait_for_counter(above=0, within=BOOT_LIMIT_S)
        guestagent.wait_for_agent(name, within=BOOT_LIMIT_S)

    def counter(self) -> int:
        return fscounter.read_counter(self.disk, offset=self.offset)

    def wait_for_counter(self, *, above: int, within: float = 20.0) -> int:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if (value := self.counter()) > above:
                return value
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: counter stayed at <= {above} for {within} s")


def _measure(
    lab: Lab,
    guest: Guest,
    *,
    acknowledged: int,
    took: float,
    gone: str | None = None,
    agent: bool = True,
) -> reliability.Checks:
    """What one agent fault left behind, for the reliability table.

    `acknowledged`: the counter the guest had written before the fault; `took`:
    the operation and its resume, without the time the fault itself lasted;
    `gone`: a snapshot the rollback must have left no record of; `agent`: False
    when the guest has no agent left to ask, so only its writes tell.
    """
    now = guest.counter()
    try:
        thawed = not agent or guestagent.freeze_status(guest.name) == "thawed"
        guest.wait_for_counter(above=now)
    except AssertionError:
        thawed = False
    conn = lab.env.store.connection()
    unfinished = conn.execute(
        "SELECT COUNT(*) FROM flows WHERE state IN (?, ?)", (journal.RUNNING, journal.COMMITTED)
    ).fetchone()[0]
    locks = conn.execute("SELECT COUNT(*) FROM vm_locks").fetchone()[0]
    leftover = int(gone is not None and records.find_snapshot(lab.env.store, gone) is not None)
    bound = reliability.BOUND_S
    print(f"{guest.name}: took {took:.1f} s (bound {bound:.0f} s), counter {acknowledged} -> {now}")
    print(f"{guest.name}: thawed {thawed}, unfinished flows {unfinished}, locks {locks}")
    return reliability.Checks(
        lost_writes=max(0, acknowledged - now),
        left_frozen=int(not thawed),
        orphans=unfinished + locks + leftover,
        hangs=int(took > reliability.BOUND_S),
    )


def _record(fault: str, outcome: str, *, via_resume: bool, checks: reliability.Checks) -> None:
    """Record the attempt as measured, then hold it to the rule."""
    reliability.record(fault, outcome, via_resume=via_resume, checks=checks)
    assert checks == reliability.Checks(lost_writes=0, left_frozen=0, orphans=0, hangs=0)


def _snapshot_copy(lab: Lab, snap: str) -> pathlib.Path:
    """The snapshot's disk as a raw file: restored as a new VM, exported, the VM deleted."""
    copy = f"{snap}-copy"
    vms.restore(lab.env, snapshot=snap, as_vm=copy)
    image = lab.tmp / f"{copy}.raw"
    offline_disk.export(lab.env, vm=copy, disk="root", file=image, fmt="raw")
    vms.delete(lab.env, name=copy)
    return image


def _frozen_snapshot_is_clean(lab: Lab, guest: Guest, snap: str) -> None:
    before = guest.counter()
    result = online.snapshot(lab.env, vm_name=guest.name, name=snap)
    after = guest.counter()
    assert result.consistency == online.FS_FROZEN, result.why
    assert result.why == "1 filesystem(s) frozen by the guest agent"
    assert guestagent.freeze_status(guest.name) == "thawed"
    guest.wait_for_counter(above=after)  # the guest writes again
    copy = _snapshot_copy(lab, snap)
    check = fscounter.check(copy)
    assert not check.needs_recovery, "a frozen snapshot's journal is flushed"
    assert check.clean, check.report
    assert before <= fscounter.read_counter(copy) <= after
    copy.unlink()


def _killed_while_frozen_then_resume_thaws(lab: Lab, guest: Guest) -> None:
    # the native snapshot's steps: freeze (1), create_snapshot, thaw
    acknowledged, began = guest.counter(), time.monotonic()
    killed = _cli(lab, {crash.ENV: "1:after"}, "snapshot", "create", guest.name, "--name", "k")
    assert killed.returncode == -9, killed.stderr
    assert guestagent.freeze_status(guest.name) == "frozen"
    stalled = guest.counter()
    resumed = _cli(lab, {}, "resume")
    checks = _measure(
        lab, guest, acknowledged=acknowledged, took=time.monotonic() - began, gone="k"
    )
    _record(KILLED_AFTER_FREEZE, reliability.ROLLED_BACK, via_resume=True, checks=checks)
    assert resumed.returncode == 0, resumed.stderr
    assert "rolled back online-snapshot" in resumed.stdout
    assert guestagent.freeze_status(guest.name) == "thawed"
    guest.wait_for_counter(above=stalled)
    assert records.find_snapshot(lab.env.store, "k") is None


def _fstrim_frees_the_volume(guest: Guest) -> None:
    backing = guestagent.backing_file(guest.disk)
    guestagent.run(guest.name, f"dd if=/dev/urandom of=/mnt/junk bs=1M count={JUNK_MIB} conv=fsync")
    written = os.stat(backing).st_blocks * 512
    guestagent.run(guest.name, "rm /mnt/junk && sync && fstrim /mnt")
    trimmed = os.stat(backing).st_blocks * 512
    print(f"{backing.name}: {written} bytes allocated with the file, {trimmed} after fstrim")
    assert written - trimmed >= (JUNK_MIB - 1) * MIB


def _late_freeze_is_thawed_before_the_snapshot_goes_on(lab: Lab, guest: Guest, snap: str) -> None:
    """The agent answers its first command, then its freeze takes longer than the
    time-out: csi-vm thaws until a thaw answers, which the agent does once its
    late freeze is done, and the snapshot is crash-consistent with the guest thawed."""
    console = vmrun.console(lab.env, vm_name=guest.name)
    guestagent.slow_freeze(guest.name, console=console, seconds=SLOW_FREEZE_S)
    acknowledged, began = guest.counter(), time.monotonic()
    result = online.snapshot(lab.env, vm_name=guest.name, name=snap)
    checks = _measure(lab, guest, acknowledged=acknowledged, took=time.monotonic() - began)
    _record(SLOW_FREEZE, reliability.COMPLETED, via_resume=False, checks=checks)
    print(f"{guest.name}: {result.consistency}: {result.why}")
    done = guestagent.slow_done(SLOW_FREEZE_S)
    assert done in console.read_text(errors="replace"), "froze late, before"
    assert result.consistency == online.CRASH_CONSISTENT
    late = f"the guest agent's freeze did not answer within {blockjobs.AGENT_TIMEOUT_S} s"
    assert result.why.startswith(late), result.why
    assert result.why.endswith("a thaw that followed answered: no filesystem is left frozen")
    assert guestagent.freeze_status(guest.name) == "thawed"
    guest.wait_for_counter(above=guest.counter())


def _stuck_freeze_leaves_the_flow_pending_and_resume_thaws(lab: Lab, guest: Guest) -> None:
    """No thaw answers within the bound: no snapshot, the flow pending with one
    line, and `resume`, once the agent answers again, thaws the late freeze."""
    console = vmrun.console(lab.env, vm_name=guest.name)
    guestagent.slow_freeze(guest.name, console=console, seconds=STUCK_FREEZE_S)
    acknowledged, began = guest.counter(), time.monotonic()
    stuck = _cli(lab, {}, "snapshot", "create", guest.name, "--name", "stuck")
    took = time.monotonic() - began
    print(f"{guest.name}: exit {stuck.returncode}: {stuck.stderr.strip()}")
    assert stuck.returncode == errors.Transient.exit_code, stuck.stderr
    assert "no snapshot taken" in stuck.stderr
    assert "the guest may still be frozen" in stuck.stderr
    assert "`csi-vm resume` thaws it once its agent answers" in stuck.stderr
    done = guestagent.slow_done(STUCK_FREEZE_S)
    assert done not in console.read_text(errors="replace"), "the hook ended first"
    guestagent.wait_for_console(guest.name, console, done, within=STUCK_FREEZE_S)
    guestagent.wait_for_agent(guest.name, within=guestagent.EXEC_LIMIT_S)
    assert guestagent.freeze_status(guest.name) == "frozen"  # the late freeze, thaw-less
    began = time.monotonic()
    resumed = _cli(lab, {}, "resume")
    took += time.monotonic() - began
    checks = _measure(lab, guest, acknowledged=acknowledged, took=took, gone="stuck")
    _record(STUCK_FREEZE, reliability.ROLLED_BACK, via_resume=True, checks=checks)
    assert resumed.returncode == 0, resumed.stderr
    assert "rolled back online-snapshot" in resumed.stdout
    assert guestagent.freeze_status(guest.name) == "thawed"
    guest.wait_for_counter(above=guest.counter())
    assert records.find_snapshot(lab.env.store, "stuck") is None


def _unresponsive_agent_gives_crash_consistent(lab: Lab, guest: Guest, snap: str) -> None:
    guestagent.stop_agent(guest.name)
    acknowledged, began = guest.counter(), time.monotonic()
    result = online.snapshot(lab.env, vm_name=guest.name, name=snap)
    took = time.monotonic() - began
    checks = _measure(lab, guest, acknowledged=acknowledged, took=took, agent=False)
    _record(AGENT_GONE, reliability.COMPLETED, via_resume=False, checks=checks)
    assert result.consistency == online.CRASH_CONSISTENT
    assert "it was not asked to freeze" in result.why, result.why
    print(f"{guest.name}: {result.consistency}: {result.why}")
    guest.wait_for_counter(above=guest.counter())  # never frozen: it kept writing
    copy = _snapshot_copy(lab, snap)
    assert fscounter.check(copy).needs_recovery, "taken while mounted and written"
    copy.unlink()


def _stalled_agent_times_out_and_the_guest_ends_thawed(lab: Lab, guest: Guest, snap: str) -> None:
    """An agent that stops answering for a while: the snapshot waits at most one time-out
    per agent command (freeze, then thaw), goes on crash-consistent, and the guest,
    once its agent answers again, is thawed."""
    began = time.monotonic()
    base = _cli(lab, {}, "snapshot", "create", guest.name, "--name", f"{snap}-base", "-o", "json")
    baseline = time.monotonic() - began
    assert base.returncode == 0, base.stderr
    assert online.FS_FROZEN in json.loads(base.stdout)["detail"], base.stdout
    console = vmrun.console(lab.env, vm_name=guest.name)
    guestagent.stall_agent(guest.name, console=console, seconds=STALL_S)
    acknowledged, began = guest.counter(), time.monotonic()
    stalled = _cli(lab, {}, "snapshot", "create", guest.name, "--name", snap, "-o", "json")
    took = time.monotonic() - began
    assert stalled.returncode == 0, stalled.stderr
    detail = json.loads(stalled.stdout)["detail"]
    print(f"{guest.name}: {took:.1f} s with the agent stopped, {baseline:.1f} s frozen: {detail}")
    late = f"did not answer within {blockjobs.AGENT_TIMEOUT_S} s"
    assert f"{online.CRASH_CONSISTENT}: the guest agent {late}" in detail, detail
    assert "it was not asked to freeze" in detail, detail
    assert guestagent.WOKEN not in console.read_text(errors="replace"), (
        "ended before the agent woke"
    )
    assert took <= baseline + 2 * blockjobs.AGENT_TIMEOUT_S
    guestagent.wait_for_agent(guest.name, within=STALL_S + guestagent.EXEC_LIMIT_S)
    checks = _measure(lab, guest, acknowledged=acknowledged, took=took)
    _record(AGENT_STALLED, reliability.COMPLETED, via_resume=False, checks=checks)
    assert guestagent.freeze_status(guest.name) == "thawed"
    guest.wait_for_counter(above=guest.counter())


def _killed_after_the_freeze_resume_thaws_and_stops_the_backup(lab: Lab, guest: Guest) -> None:
    before = set(_published(lab, "bare"))
    acknowledged = guest.counter()
    # the push backup's steps: create_volume, attach, freeze (3), backup_begin, thaw, ...
    began = time.monotonic()
    killed = _cli(lab, {crash.ENV: "3:after"}, "snapshot", "create", guest.name, "--name", "kb")
    assert killed.returncode == -9, killed.stderr
    assert guestagent.freeze_status(guest.name) == "frozen"
    stalled = guest.counter()
    assert stalled >= acknowledged
    resumed = _cli(lab, {}, "resume")
    checks = _measure(
        lab, guest, acknowledged=acknowledged, took=time.monotonic() - began, gone="kb"
    )
    _record(KILLED_AFTER_FREEZE, reliability.ROLLED_BACK, via_resume=True, checks=checks)
    assert resumed.returncode == 0, resumed.stderr
    assert "rolled back online-snapshot" in resumed.stdout
    assert guestagent.freeze_status(guest.name) == "thawed"
    assert guest.wait_for_counter(above=stalled) > stalled >= acknowledged
    assert records.find_snapshot(lab.env.store, "kb") is None
    assert set(_published(lab, "bare")) == before, "the backup's volume is left"
    domain = running.get(lab.env.store, guest.name).domain
    job = subprocess.run(
        ["virsh", "-c", "qemu:///system", "domjobinfo", domain],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "None" in job.stdout, job.stdout


def test_native_snapshots_freeze_resume_thaws_and_fstrim_frees(
    lab: Lab, agent_boot: vmrun.Boot
) -> None:
    guest = Guest(lab, agent_boot, name="agent-native", driver="local")
    _frozen_snapshot_is_clean(lab, guest, "agent-native-frozen")
    _killed_while_frozen_then_resume_thaws(lab, guest)
    _fstrim_frees_the_volume(guest)
    _late_freeze_is_thawed_before_the_snapshot_goes_on(lab, guest, "agent-native-late")
    _stuck_freeze_leaves_the_flow_pending_and_resume_thaws(lab, guest)
    _unresponsive_agent_gives_crash_consistent(lab, guest, "agent-native-crash")
    vmrun.stop(lab.env, vm_name=guest.name, grace_s=0)


def test_a_push_backup_is_taken_inside_the_freeze_and_never_leaves_it_frozen(
    lab: Lab, agent_boot: vmrun.Boot
) -> None:
    guest = Guest(lab, agent_boot, name="agent-backup", driver="bare")
    _frozen_snapshot_is_clean(lab, guest, "agent-backup-frozen")
    _killed_after_the_freeze_resume_thaws_and_stops_the_backup(lab, guest)
    _stalled_agent_times_out_and_the_guest_ends_thawed(lab, guest, "agent-backup-stalled")
    vmrun.stop(lab.env, vm_name=guest.name, grace_s=0)
