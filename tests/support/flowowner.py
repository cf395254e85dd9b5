"""Real processes that own flows, for the tests of flow ownership (csi_vm/store/owner.py).

python -m tests.support.flowowner hold STORE FLOW VM
    begins FLOW on VM, prints "held PID START", then waits for its stdin
    to close and exits with the flow unfinished (as a killed csi-vm would)
python -m tests.support.flowowner pid-reuse STORE
    run as PID 1 of a new PID namespace (`unshare --pid --fork
    --mount-proc`): a first child begins a flow and exits, a second child
    is given the same PID (ns_last_pid), and the judgement of the flow's
    owner is printed as JSON
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from csi_vm.store import db, journal, owner


def hold(store_path: str, flow: str, vm: str) -> None:
    store = db.Store(pathlib.Path(store_path))
    journal.begin(store, flow_id=flow, kind="test", vm=vm, args={}, wait=0)
    me = owner.Proc().me()
    print(f"held {me.pid} {me.start}", flush=True)
    sys.stdin.read()  # until the test closes it


def _spawn_holder(store_path: str, flow: str) -> tuple[subprocess.Popen[str], int, int]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.support.flowowner", "hold", store_path, flow, "vm-reused"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    _, pid, start = child.stdout.readline().split()
    return child, int(pid), int(start)


def pid_reuse(store_path: str) -> None:
    """A flow's owner exits; another process gets its PID; is the flow still owned?"""
    first, pid, start = _spawn_holder(store_path, "f-first")
    assert first.stdin is not None and first.stdout is not None
    first.stdin.close()
    first.stdout.close()
    first.wait()
    # the next process of this namespace gets `pid` again
    pathlib.Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
    second = subprocess.Popen(["sleep", "600"])
    try:
        proc = owner.Proc()
        found = proc.stat(second.pid)
        store = db.Store(pathlib.Path(store_path))
        result = {
            "recorded": [pid, start],
            "reused": [second.pid, found.start if found else None],
            "legacy_pid_only_alive": proc.alive(owner.Owner(pid=pid, start=-1, boot="")),
            "interrupted": [f.id for f in journal.interrupted(store)],
        }
    finally:
        second.kill()
        second.wait()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"hold": hold, "pid-reuse": pid_reuse}[command](*args)
