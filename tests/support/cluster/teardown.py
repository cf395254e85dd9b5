"""Stop the test cluster and remove everything it made, whatever state it is in.

Each step works from what the machine shows (pid files, containerd's task
list, /proc/self/mountinfo, losetup, iptables, ip) rather than from a record
of what `up` did, so `down` also cleans up after an `up` that was killed.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

from tests.support import loops
from tests.support.cluster import daemons, layout, node2

Say = Callable[[str], object]
_OURS = re.compile(r"^(KUBE-|CNI-)")


def run(where: layout.Layout, *, order: Sequence[str], say: Say) -> None:
    # The second node first: its pods may use what the first node serves.
    second = where.node2()
    if _second_node_left(where):
        say(f"stopping node {second.name}")
        _stop_node(where, second)
        node2.remove(where)
    say("stopping the kubelet and kube-proxy")
    _stop_node(where, where.node1())
    say("stopping the control plane")
    for name in reversed(order):
        daemons.stop(name, run_dir=where.run)
    say("unmounting and detaching what pods left")
    _unmount_under((layout.KUBELET_DIR, where.state, where.run))
    # The drivers' volumes, and the kubelet's own loop devices that hold each
    # published block volume's device open.
    _detach_loops(where.state)
    _detach_loops(layout.KUBELET_DIR)
    _network()
    for path in (layout.KUBELET_DIR, where.state, where.run):
        shutil.rmtree(path, ignore_errors=True)
    say("cluster down")


def _second_node_left(where: layout.Layout) -> bool:
    return (
        where.node2().run.exists()
        or node2.netns_path().exists()
        or any(c.is_dir() for c in node2.cgroup_dirs(where.node2()))
        or subprocess.run(
            ["ip", "link", "show", layout.VETH_HOST], capture_output=True, check=False
        ).returncode
        == 0
    )


def _stop_node(where: layout.Layout, node: layout.Node) -> None:
    for name in ("kubelet", "kube-proxy"):
        daemons.stop(node.daemon(name), run_dir=where.run)
    _remove_containers(node)
    daemons.stop(node.daemon("containerd"), run_dir=where.run)
    _kill_shims(node)
    _kill_pod_processes(node)


def _ctr(where: layout.Node, *args: str) -> list[str]:
    if not where.containerd_socket.is_socket():
        return []
    done = subprocess.run(
        ["ctr", f"--address={where.containerd_socket}", "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return done.stdout.split()


def _remove_containers(where: layout.Node) -> None:
    for task in _ctr(where, "tasks", "ls", "-q"):
        _ctr(where, "tasks", "kill", "-s", "SIGKILL", task)
    for task in _ctr(where, "tasks", "ls", "-q"):
        _ctr(where, "tasks", "rm", "-f", task)
    for container in _ctr(where, "containers", "ls", "-q"):
        _ctr(where, "containers", "rm", container)


def _kill_shims(where: layout.Node) -> None:
    """Shims (and so containers) outlive containerd: end the ones of this cluster."""
    marker = str(where.containerd_socket).encode()
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes()
            if b"containerd-shim" in cmdline and marker in cmdline:
                os.kill(int(proc.name), signal.SIGKILL)


_CGROUPS = pathlib.Path("/sys/fs/cgroup")


def _kill_pod_processes(node: layout.Node) -> None:
    """SIGKILL what pods still run: after a crash no containerd is left to stop them.

    A shim's death does not end its container; the kubelet's pod cgroups
    still list every process of every pod. The emptied cgroups are removed.
    """
    # The kubelet's cgroupfs driver puts every pod of the node below this cgroup.
    pods = node.pods_cgroup
    tree = _CGROUPS / "pids" / pods
    deadline = time.monotonic() + 20
    while (pids := _procs(tree)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    for hierarchy in _CGROUPS.iterdir() if _CGROUPS.is_dir() else ():
        node2.remove_cgroup(hierarchy / pods)


def _procs(tree: pathlib.Path) -> list[int]:
    if not tree.is_dir():
        return []
    found: list[int] = []
    for procs in tree.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in procs.read_text().split()]
    return found


def _mounts_under(roots: Sequence[pathlib.Path]) -> list[str]:
    found = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            found.append(point)
    return found


def _unmount_under(roots: Sequence[pathlib.Path]) -> None:
    # Deepest first; lazily, since a dying process may still hold one.
    for _ in range(3):
        points = sorted(set(_mounts_under(roots)), key=len, reverse=True)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _detach_loops(state: pathlib.Path) -> None:
    """Loop devices attached to files under ``state`` (by the drivers or the kubelet).

    A device still held (a lazily unmounted bind of it, a dying process) is
    only marked to clear itself: wait a little for it to go, asking again.
    """
    deadline = time.monotonic() + 20
    while (held := _loops_under(state)) and time.monotonic() < deadline:
        for name in held:
            loops.detach_under(name, state)
        time.sleep(0.5)


def _loops_under(state: pathlib.Path) -> list[str]:
    done = subprocess.run(
        ["losetup", "-n", "-O", "NAME,BACK-FILE", "-l"], capture_output=True, text=True, check=False
    )
    found = []
    for line in done.stdout.splitlines():
        name, _, backing = line.strip().partition(" ")
        if backing.strip().startswith(f"{state}/"):
            found.append(name)
    return found


def _network() -> None:
    _iptables_cleanup()
    netns = pathlib.Path("/var/run/netns")
    if netns.is_dir():
        for ns in netns.glob("cni-*"):
            subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True, check=False)
    subprocess.run(["ip", "link", "delete", layout.BRIDGE], capture_output=True, check=False)


def _iptables_cleanup() -> None:
    """Remove kube-proxy's and the CNI plugins' chains and the jumps into them."""
    for table in ("nat", "filter", "mangle"):
        rules = subprocess.run(
            ["iptables", "-t", table, "-S"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        chains = [r.split()[1] for r in rules if r.startswith("-N ") and _OURS.match(r.split()[1])]
        for rule in rules:
            parts = shlex.split(rule)
            if (
                parts[:1] == ["-A"]
                and not _OURS.match(parts[1])
                and any(_OURS.match(p) for p in parts[2:])
            ):
                subprocess.run(
                    ["iptables", "-t", table, "-D", *parts[1:]], capture_output=True, check=False
                )
        for chain in chains:
            subprocess.run(["iptables", "-t", table, "-F", chain], capture_output=True, check=False)
        for chain in chains:
            subprocess.run(["iptables", "-t", table, "-X", chain], capture_output=True, check=False)
