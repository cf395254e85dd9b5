"""Outcomes of the hardening tests, recorded for `docs/reliability.md`.

Tests call `record(fault, outcome)`; when CSI_VM_RELIABILITY_OUT names a file,
each record is appended to it as one JSON line (appends of one short line are
atomic, so parallel test processes can share the file). `scripts/reliability-table`
renders the table from that file. FAULTS is the declared list: the committed
table must have exactly these rows (a test checks it), so the document cannot
drift from what the tests try.

Tests that run the counter guest through a fault also measure, per attempt,
what must be zero (`Checks`): lost acknowledged writes, guests left frozen,
orphans, hangs past the stated bound. They record the measured values before
asserting them, so a run that broke one shows it in the table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

ENV_VAR = "CSI_VM_RELIABILITY_OUT"

COMPLETED = "completed"
ROLLED_BACK = "rolled back"
REFUSED = "refused"
OUTCOMES = (COMPLETED, ROLLED_BACK, REFUSED)
#: tally key: of the outcomes, how many `resume` had to finish
VIA_RESUME = "via resume"
#: tally key: how many attempts measured `Checks`
MEASURED = "measured"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Checks:
    """What one attempt left behind, measured after it (and its resume) ended."""

    #: counter writes the guest had acknowledged before the fault and the disk lost
    lost_writes: int
    #: 1 when the guest did not run and write afterwards (paused, frozen, gone)
    left_frozen: int
    #: leftover flows, locks, block or domain jobs, stray domains and volumes
    orphans: int
    #: 1 when the operation and its resume took longer than the stated bound
    hangs: int


CHECKS = tuple(f.name for f in dataclasses.fields(Checks))
#: column titles of the checks, in CHECKS order
CHECK_TITLES = ("lost writes", "left frozen", "orphans", "hangs past bound")
#: the cell of a check the row's test does not measure
NOT_MEASURED = "n/a"

#: libvirt deadlines in the tests that fault libvirtd (production: 60 s, 30 s, 5 s x 5)
CALL_S = 5.0
RECONNECT_S = 5.0
KEEPALIVE = (1, 3)
#: the stated bound on one attempt, the operation and its resume together: a
#: flow and its rollback make well under 15 libvirt connections or calls
#: that may each wait a call's deadline plus the reconnect budget
BOUND_S = 15 * (CALL_S + RECONNECT_S)

#: fault id -> what was done; the order is the table's order
FAULTS: dict[str, str] = {
    "driver-unavailable-2-calls": "driver answers UNAVAILABLE to the next 2 calls",
    "driver-aborted-2-calls": "driver answers ABORTED to the next 2 calls",
    "driver-deadline-2-calls": "driver answers DEADLINE_EXCEEDED to the next 2 calls",
    "driver-outage-0.5s": "driver answers UNAVAILABLE to everything for 0.5 s",
    "driver-unavailable-persistent": "the flow's main RPC answers UNAVAILABLE until cleared",
    "driver-aborted-persistent": "the flow's main RPC answers ABORTED until cleared",
    "driver-hang": "the flow's main RPC hangs past the call deadline, every time",
    "driver-connection-dropped": "the connection is torn down during a call",
    "snapshot-never-ready": "CreateSnapshot/group snapshots never become ready_to_use",
    "driver-killed-during-host-copy": (
        "driver SIGKILLed and restarted during host-copy clones and snapshots "
        "(at 4 moments, after 4 kinds of step, and down past the retry budget)"
    ),
    "driver-down-10s-then-back": "driver down 10 s (client backoff grown), then restarted",
    "device-node-gone": "a published device node unmounted and removed before the host copy",
    "host-enospc-during-copy": "target filesystem full (ENOSPC) during a host copy",
    "loop-device-lost-backing": (
        "a published loop device detached (`losetup -d`) or its backing file truncated "
        "(`losetup -c`) before or during a host copy, clone, snapshot or export"
    ),
    "libvirtd-restarted-during-block-job": (
        "libvirtd SIGKILLed and restarted during an online expansion's block copy, at its "
        "pivot, and during an online snapshot's push backup (back within 1 s, and down "
        "past the reconnect budget)"
    ),
    "libvirtd-restarted-during-migration": (
        "libvirtd of the source or the destination SIGKILLed and restarted during a live "
        "storage migration"
    ),
    "libvirtd-frozen-during-block-job": (
        "libvirtd stopped (SIGSTOP) during an online expansion's block copy and an online "
        "snapshot's push backup, until the operation returned; then SIGCONT"
    ),
    "libvirtd-frozen-during-migration": (
        "libvirtd of the source or the destination stopped (SIGSTOP) during a live storage "
        "migration, until the migration returned; then SIGCONT"
    ),
    "csi-vm-killed-between-freeze-and-thaw": (
        "csi-vm SIGKILLed right after the guest agent froze the guest, in an online CSI "
        "snapshot and in an online push backup; then `csi-vm resume`"
    ),
    "guest-freeze-slower-than-its-time-out": (
        "the guest's freeze takes longer than the agent's time-out (a sleeping freeze hook)"
    ),
    "guest-freeze-stuck-past-every-thaw": (
        "the guest's freeze outlasts the time-out and every thaw csi-vm sends; the agent "
        "answers again only later; then `csi-vm resume`"
    ),
    "guest-agent-stopped": "the guest agent stopped for good before an online snapshot",
    "guest-agent-stalled": (
        "the guest agent stopped (SIGSTOP in the guest) for 60 s during an online snapshot"
    ),
    "bad-vm-spec": "hypothesis-generated VM specs (names, sizes, modes, sources)",
    "bad-config-file": "hypothesis-generated config files",
    "bad-cli-arguments": "hypothesis-generated names and sizes on the command line",
    "driver-fuzz-fields": "every CSI RPC with hypothesis-generated request fields",
    "driver-fuzz-raw-bytes": "every CSI RPC with random bytes as the request",
    "load-100-ops-2-restarts": "100 concurrent operations on 50 VMs, driver restarted twice",
}


def record(
    fault: str,
    outcome: str,
    *,
    count: int = 1,
    via_resume: bool = False,
    checks: Checks | None = None,
) -> None:
    """Write down that `fault` was tried `count` times with `outcome`.

    `via_resume`: the flow's own rollback could not finish (the fault was
    still on) and `csi-vm resume` completed it afterwards. `checks`: what
    the attempt left behind, as measured (one attempt: `count` is 1).
    """
    assert fault in FAULTS, f"undeclared fault {fault!r}: add it to FAULTS"
    assert outcome in OUTCOMES, outcome
    target = os.environ.get(ENV_VAR)
    if not target or count <= 0:
        return
    row: dict[str, object] = {
        "fault": fault, "outcome": outcome, "count": count, "via_resume": via_resume,
    }  # fmt: skip
    if checks is not None:
        assert count == 1, "checks are measured per attempt"
        row["checks"] = dataclasses.asdict(checks)
    line = json.dumps(row) + "\n"
    with pathlib.Path(target).open("a", encoding="utf-8") as stream:
        stream.write(line)


def tally(path: pathlib.Path) -> dict[str, dict[str, int]]:
    """fault -> outcome -> how many times, from a file `record` wrote."""
    counts: dict[str, dict[str, int]] = {
        f: dict.fromkeys((*OUTCOMES, VIA_RESUME, MEASURED, *CHECKS), 0) for f in FAULTS
    }
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            got = counts[row["fault"]]
            got[row["outcome"]] += int(row["count"])
            if row.get("via_resume"):
                got[VIA_RESUME] += int(row["count"])
            if "checks" in row:
                got[MEASURED] += 1
                for check in CHECKS:
                    got[check] += int(row["checks"][check])
    return counts


def render(counts: dict[str, dict[str, int]]) -> str:
    """The markdown table, one row per declared fault.

    A check a fault's test does not measure (no guest runs in it) is `NOT_MEASURED`.
    """
    titles = " | ".join(("tried", *OUTCOMES, VIA_RESUME, *CHECK_TITLES))
    lines = [f"| fault | what was done | {titles} |", "|---|---|" + "---:|" * 9]
    for fault, what in FAULTS.items():
        got = counts.get(fault, {})
        row = [got.get(o, 0) for o in OUTCOMES]
        measured = got.get(MEASURED, 0) > 0
        checks = [str(got.get(c, 0)) if measured else NOT_MEASURED for c in CHECKS]
        cells = " | ".join(map(str, [sum(row), *row, got.get(VIA_RESUME, 0), *checks]))
        lines.append(f"| `{fault}` | {what} | {cells} |")
    return "\n".join(lines) + "\n"
