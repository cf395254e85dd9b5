"""Two private libvirt nodes running the counter guest, for libvirtd faults.

Both nodes are private libvirt daemons (scripts/libvirt-node), so killing or
freezing one disturbs nothing else on the machine. The drivers have neither
snapshots nor expansion, so the online snapshot is a push backup and the
online expansion a block copy and pivot.

The rule every attempt is held to: the flow completes once libvirtd is back,
or rolls back with one line from the error tree (after `resume` where the
rollback itself could not reach libvirtd); then `measure` finds no lost
acknowledged counter write, a guest that runs and writes on exactly one
node, no orphan (flow, lock, block or domain job, domain, volume), and an
attempt that ended within `BOUND_S`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from csi_vm import errors
from csi_vm.csi import client as csi_client
from csi_vm.flows import context, engine, vmrun
from csi_vm.store import journal, running
from launcher import counter, libvirt_conn
from tests.integration.hardening.conftest import locks, referenced
from tests.integration.running.conftest import Lab, make_env, stop_all, wait_for_counter
from tests.support import driverproc, libvirtnode, reliability

NODES = {"node-a": "csi-vm-hard-a", "node-b": "csi-vm-hard-b"}
#: the reconnect budget, a call's deadline and keepalive in these tests, and
#: the bound an attempt must end within: stated with the table they fill
SHORT_BUDGET_S = reliability.RECONNECT_S
CALL_S = reliability.CALL_S
KEEPALIVE = reliability.KEEPALIVE
BOUND_S = reliability.BOUND_S
#: how long a guest gets to show it still writes after an attempt
WRITES_WITHIN_S = 20.0


@dataclasses.dataclass
class Nodes:
    lab: Lab
    uris: dict[str, str]

    @property
    def env(self) -> context.Env:
        return self.lab.env

    def volumes(self) -> set[str]:
        found: set[str] = set()
        for drv in self.lab.drivers.values():
            with csi_client.Client(drv.endpoint) as c:
                found |= {e.volume.volume_id for e in c.list_volumes()}
        return found

    def active(self) -> dict[str, list[str]]:
        out = {}
        for node, uri in self.uris.items():
            with libvirt_conn.Connection.open(uri) as conn:
                out[node] = [n for n in conn.domain_names() if conn.status(n).active]
        return out


def start_nodes(tmp: pathlib.Path, boot: vmrun.Boot) -> Iterator[Nodes]:
    """The two nodes, a bare driver on each, and an env that knows both (a fixture's body)."""
    uris = {node: libvirtnode.start(name) for node, name in NODES.items()}
    bare = ("snapshot", "expansion", "clone")
    drivers = {
        f"bare-{n[-1]}": driverproc.start_driver(tmp / n, without=bare, node_id=n) for n in NODES
    }
    cfg = {
        "node": "node-a",
        "nodes": {n: {"libvirt": uris[n], "driver": f"bare-{n[-1]}"} for n in NODES},
        "drivers": {
            name: {"endpoint": d.endpoint, "nodes": {f"node-{name[-1]}": d.endpoint}}
            for name, d in drivers.items()
        },
    }
    env = make_env(tmp, cfg)
    try:
        yield Nodes(lab=Lab(tmp=tmp, env=env, boot=boot, drivers=drivers), uris=uris)
    finally:
        try:
            stop_all(env)
        finally:
            env.close()
            for drv in drivers.values():
                drv.stop()
            for name in NODES.values():
                libvirtnode.stop(name)


def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test values of the reconnect budget, the call deadline and keepalive."""
    monkeypatch.setattr(libvirt_conn, "RECONNECT_S", SHORT_BUDGET_S)
    monkeypatch.setattr(libvirt_conn, "CALL_S", CALL_S)
    monkeypatch.setattr(libvirt_conn, "KEEPALIVE_INTERVAL_S", KEEPALIVE[0])
    monkeypatch.setattr(libvirt_conn, "KEEPALIVE_COUNT", KEEPALIVE[1])


def run(call: Callable[[], object]) -> str:
    try:
        call()
    except errors.CsiVmError as err:
        assert "\n" not in str(err), str(err)
        print(f"rolled back: {err}")
        return reliability.ROLLED_BACK
    return reliability.COMPLETED


def settle(two: Nodes) -> bool:
    """What `csi-vm resume` does for flows a failed rollback left; True if there were any.

    Those flows are marked as running under this (live) test process; in
    production that CLI process has exited. Handed to a process known to be
    gone, they are resumed as `csi-vm resume` would.
    """
    store = two.env.store
    states = (journal.RUNNING, journal.COMMITTED)
    query = "SELECT COUNT(*) FROM flows WHERE state IN (?, ?)"
    left = bool(store.connection().execute(query, states).fetchone()[0])
    if left:
        gone = subprocess.Popen(["true"])
        gone.wait()
        with store.transaction() as cur:
            cur.execute("UPDATE flows SET pid = ? WHERE state IN (?, ?)", (gone.pid, *states))
    engine.resume(two.env)
    return left


def _runs(conn: libvirt_conn.Connection, name: str) -> bool:
    try:
        return conn.status(name).active
    except errors.NotFound:
        return False


@contextlib.contextmanager
def once_copying(two: Nodes, name: str, act: Callable[[], None]) -> Iterator[None]:
    """Inside the block, `act` is called (once, from a watcher thread) when the migration's
    disk copy begins: the source runs the migration job and the destination its domain."""
    stop = threading.Event()

    def watch() -> None:
        with (
            libvirt_conn.Connection.open(two.uris["node-a"]) as src,
            libvirt_conn.Connection.open(two.uris["node-b"]) as dst,
        ):
            while not stop.is_set():
                if src.call(name, "jobInfo", "jobInfo")[0] != 0 and _runs(dst, name):
                    act()
                    return
                stop.wait(0.05)

    watcher = threading.Thread(target=watch, name=f"watch-{name}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(BOUND_S)


def _orphans(two: Nodes, name: str, node: str) -> int:
    """Flows, locks, stray domains, block and domain jobs, volumes nobody references."""
    found = len(journal.interrupted(two.env.store)) + locks(two.env.store)
    active = two.active()
    found += sum(n != name or where != node for where, names in active.items() for n in names)
    if name in active[node]:
        with libvirt_conn.Connection.open(two.uris[node]) as conn:
            found += bool(conn.call(name, "blockJobInfo", "blockJobInfo", "vda", 0))
            found += conn.call(name, "jobInfo", "jobInfo")[0] != 0
    volumes, _snaps = referenced(two.env.store)
    return found + len(two.volumes() ^ volumes)


def _writes_on(disk: pathlib.Path) -> tuple[int, bool]:
    """The counter on the disk now, and whether the guest goes on writing."""
    now = counter.read_counter(disk)
    try:
        wait_for_counter(disk, above=now + 1, within=WRITES_WITHIN_S)
    except AssertionError:
        return now, False
    return now, True


def measure(two: Nodes, name: str, *, before: int, began: float) -> reliability.Checks:
    """What the attempt left behind; `before`: the counter read just before the fault."""
    took = time.monotonic() - began
    node = running.get(two.env.store, name).node
    orphans = _orphans(two, name, node)
    now, writing = _writes_on(two.lab.device(name, node=node))
    print(f"{name}: took {took:.1f} s (bound {BOUND_S:.0f} s), counter {before} -> {now}")
    return reliability.Checks(
        lost_writes=max(0, before - now),
        left_frozen=int(not writing),
        orphans=orphans,
        hangs=int(took > BOUND_S),
    )


def record(fault: str, outcome: str, *, via_resume: bool, checks: reliability.Checks) -> None:
    """Record the attempt as measured, then hold it to the rule."""
    reliability.record(fault, outcome, via_resume=via_resume, checks=checks)
    assert checks == reliability.Checks(lost_writes=0, left_frozen=0, orphans=0, hangs=0)
