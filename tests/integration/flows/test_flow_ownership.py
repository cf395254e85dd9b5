"""A flow belongs to a live process only while its PID, start time and boot id all match.

Real SQLite stores, real processes: a child process begins a flow and holds
it. A reboot is played by giving the journal another boot id file; PID reuse
is real, in a PID namespace of the test's own, where the kernel is told to
hand a finished owner's PID to the next process.
"""

from __future__ import annotations

import json
import pathlib
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from csi_vm import config, errors
from csi_vm.flows import context, engine
from csi_vm.store import db, journal, owner

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def store_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "csi-vm.db"


@pytest.fixture
def holder(store_path: pathlib.Path) -> Iterator[tuple[int, int]]:
    """A real process that began flow f1 on VM web and is still running: (pid, start)."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.flowowner", "hold", str(store_path), "f1", "web"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    _, pid, start = child.stdout.readline().split()
    try:
        yield int(pid), int(start)
    finally:
        child.stdin.close()
        child.stdout.close()
        child.wait(30)


def _rebooted(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    """From now on the journal reads a boot id of another boot."""
    boot_id = tmp_path / "boot_id"
    boot_id.write_text(f"{uuid.uuid4()}\n")
    monkeypatch.setattr(journal, "PROC", owner.Proc(boot_id=boot_id))


def test_a_live_owner_keeps_its_vm_busy(store_path: pathlib.Path, holder: tuple[int, int]) -> None:
    store = db.Store(store_path)
    row = store.connection().execute("SELECT pid, pid_start, boot_id FROM flows").fetchone()
    assert tuple(row) == (*holder, owner.BOOT_ID.read_text().strip())
    assert journal.interrupted(store) == []
    with pytest.raises(errors.Busy, match=rf"VM 'web' is busy: test f1 \(process {holder[0]}\)"):
        journal.begin(store, flow_id="f2", kind="test", vm="web", args={}, wait=0)


def test_after_a_reboot_the_flow_is_abandoned_and_resume_takes_it(
    store_path: pathlib.Path,
    holder: tuple[int, int],
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _rebooted(monkeypatch, tmp_path)  # the holder's PID still runs: only the boot id says no
    store = db.Store(store_path)
    assert [f.id for f in journal.interrupted(store)] == ["f1"]
    with pytest.raises(errors.Busy, match="interrupted test f1") as caught:
        journal.begin(store, flow_id="f2", kind="test", vm="web", args={}, wait=0)
    assert "csi-vm resume" in str(caught.value)
    env = context.Env(cfg=config.Config(), store=store, state_dir=tmp_path)
    assert engine.resume(env) == ["rolled back test f1 of VM web"]
    journal.begin(store, flow_id="f2", kind="test", vm="web", args={}, wait=0)
    mine = store.connection().execute("SELECT boot_id FROM vm_locks").fetchone()[0]
    assert mine == journal.PROC.boot_id()  # owned under the new boot


def test_a_reused_pid_does_not_own_the_flow(store_path: pathlib.Path) -> None:
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc",
         sys.executable, "-m", "tests.support.flowowner", "pid-reuse", str(store_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=50, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout.splitlines()[-1])
    (pid, start), (reused_pid, reused_start) = seen["recorded"], seen["reused"]
    assert reused_pid == pid and reused_start != start  # the kernel reused the PID
    assert seen["legacy_pid_only_alive"]  # a bare PID would have kept the VM busy
    assert seen["interrupted"] == ["f-first"]


def test_a_store_of_schema_3_keeps_its_flows_judged_by_pid(store_path: pathlib.Path) -> None:
    conn = sqlite3.connect(store_path)
    conn.executescript(db._SCHEMA)
    for version in (2, 3):
        for statement in db._MIGRATIONS[version].split(";"):
            conn.execute(statement)
    # PID 1 runs: under the rule of then, its owner is alive
    conn.execute(
        "INSERT INTO flows (id, kind, vm, args, state, pid, started, updated)"
        " VALUES ('old', 'test', 'web', '{}', 'running', 1, 1.0, 1.0)"
    )
    conn.execute("INSERT INTO vm_locks (vm, flow, pid) VALUES ('web', 'old', 1)")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()

    store = db.Store(store_path)
    assert store.connection().execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    row = store.connection().execute("SELECT pid, pid_start, boot_id FROM vm_locks").fetchone()
    assert tuple(row) == (1, -1, "")
    assert journal.interrupted(store) == []
    with pytest.raises(errors.Busy, match="is busy: test old"):
        journal.begin(store, flow_id="new", kind="test", vm="web", args={}, wait=0)
