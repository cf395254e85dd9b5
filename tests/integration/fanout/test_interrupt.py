"""A fan-out stopped part way keeps the clones it made; `resume` makes the rest or rolls back.

Ctrl-C (SIGINT) stops it between clones; kill -9 is tried at every step
boundary of the fan-out's own flow, and at every boundary of the flows of
the clones it makes (tests.support.crash, tests.support.flow_signal).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from csi_vm.flows import vms
from csi_vm.store import journal
from tests.integration.fanout.conftest import Golden, assert_tidy, vm_names
from tests.support import crash, flow_signal

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

NAMES = ("lab-1", "lab-2", "lab-3")
FANOUT = ("--count", "3", "--name-template", "lab-{i}")


def _run(golden: Golden, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    argv = (
        flow_signal.command(*args)
        if flow_signal.KIND in env
        else crash.command(*args)
        if crash.ENV in env
        else [sys.executable, "-m", "csi_vm", *args]
    )
    return subprocess.run(
        argv,
        env={**golden.lab.cli_env(), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _assert_made(golden: Golden, names: tuple[str, ...]) -> None:
    assert vm_names(golden.lab) == {golden.vm, *names}
    for name in names:
        assert golden.export(name) == golden.data, name


@pytest.mark.parametrize("choice", ["finish", "rollback"])
def test_ctrl_c_keeps_clones_made_and_resume_does_as_told(
    ladder: str, golden: Golden, choice: str
) -> None:
    start = golden.lab.inventory()
    clone = ["clone", golden.vm, *FANOUT, "--parallel", "1"]
    # Ctrl-C as the second clone begins: that one is finished, no third is started.
    setup = 1 if ladder == "csi-clone" else 2  # attach; then a snapshot, or a measure
    signal_at = {flow_signal.KIND: "fanout", flow_signal.SIGNAL: "INT"}
    got = _run(golden, clone, **signal_at, **{crash.ENV: str(setup + 2)})
    assert got.returncode == 130, got.stderr
    assert "interrupted: 2 of 3 clones made and kept" in got.stderr
    assert "csi-vm resume --rollback" in got.stderr
    assert "Traceback" not in got.stderr
    _assert_made(golden, NAMES[:2])

    # Other commands leave it be, and say so.
    listed = _run(golden, ["vm", "list"])
    assert listed.returncode == 0 and "csi-vm resume --rollback" in listed.stderr
    busy = _run(golden, ["clone", golden.vm, "other"])
    assert busy.returncode != 0 and "csi-vm resume" in busy.stderr
    _assert_made(golden, NAMES[:2])

    resumed = _run(golden, ["resume"] + (["--rollback"] if choice == "rollback" else []))
    assert resumed.returncode == 0, resumed.stderr
    if choice == "finish":
        assert "finished fan-out" in resumed.stdout
        _assert_made(golden, NAMES)
    else:
        assert "deleted the 2 clones it made" in resumed.stdout
        _assert_made(golden, ())
        assert golden.lab.inventory() == start
    assert_tidy(golden.lab)


def test_a_failed_clone_stops_the_fanout_and_keeps_the_others(golden: Golden) -> None:
    clone = ["clone", golden.vm, *FANOUT, "--parallel", "1"]
    fail = {flow_signal.KIND: "fanout-[0-9a-f]+-2", flow_signal.SIGNAL: "FAIL"}
    got = _run(golden, clone, **fail, **{crash.ENV: "2"})  # the second clone's second step
    assert got.returncode == 5, got.stderr
    assert "failure injected" in got.stderr and "1 of 3 clones made and kept" in got.stderr
    assert "Traceback" not in got.stderr
    _assert_made(golden, NAMES[:1])
    resumed = _run(golden, ["resume"])
    assert resumed.returncode == 0, resumed.stderr
    _assert_made(golden, NAMES)
    assert_tidy(golden.lab)


def test_kill_at_every_step_then_resume_either_way(golden: Golden) -> None:
    start = golden.lab.inventory()
    # One clone at a time, so that the N-th boundary is the same one each run
    # (the third host copy still reads the first clone).
    clone = ["clone", golden.vm, *FANOUT, "--parallel", "1"]
    # The fan-out's own boundaries, before and after each step; then any
    # flow's N-th boundary, which reaches into the clones' own flows.
    points = [
        ({flow_signal.KIND: "fanout"}, f"{n}{at}") for n in range(1, 20) for at in ("", ":after")
    ]
    points += [({}, str(n)) for n in range(1, 20)]
    crashes, done_kinds = 0, set()
    for env, point in points:
        kind = env.get(flow_signal.KIND, "any")
        if kind in done_kinds:
            continue
        got = _run(golden, clone, **env, **{crash.ENV: point})
        if got.returncode == 0:  # past the last boundary: the fan-out ran to its end
            _assert_made(golden, NAMES)
            done_kinds.add(kind)
            _reset(golden)
            continue
        assert got.returncode == -9, (point, got.stderr)
        crashes += 1
        committed = any(
            f.kind == "fanout" and f.state == journal.COMMITTED
            for f in journal.interrupted(golden.lab.env.store)
        )
        rollback = crashes % 2 == 0
        resumed = _run(golden, ["resume", *(["--rollback"] if rollback else [])])
        assert resumed.returncode == 0, (point, resumed.stderr)
        assert_tidy(golden.lab)
        if rollback and not committed:
            _assert_made(golden, ())
            assert golden.lab.inventory() == start, point
        else:
            _assert_made(golden, NAMES)
            _reset(golden)
    assert done_kinds == {"fanout", "any"}
    assert crashes >= 10


def _reset(golden: Golden) -> None:
    for name in NAMES:
        vms.delete(golden.lab.env, name=name)
