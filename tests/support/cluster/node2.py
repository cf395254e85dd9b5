"""The second node's namespaces: made by `up`, removed by `down`.

The second node's containerd, kubelet and kube-proxy run on this machine
like the first node's, each entered (nsenter) into three namespaces made
here, so that the two nodes do not see each other's state:

- network: a namespace joined to the machine by a veth pair, with its own
  pod bridge carrying the node's address. The machine routes the node's pod
  CIDR over the pair and the node routes everything else back, so pods of
  both nodes, the API server and the kubelets reach each other;
- mount: a slave of the machine's (the machine's mounts, /dev and loop
  devices included, show inside; the node's own mounts stay inside), in
  which the node's directories are bound over the paths every node uses:
  the kubelet's root directory, the pod log directories and the local
  drivers' state. The kubelet's directory is a shared mount there, as CSI
  drivers' Bidirectional mounts need;
- UTS: the node's own hostname, as host-network pods see it.

The mount and UTS namespaces outlive the processes in them through files
bound to them in the node's run directory; `down` unmounts those files.
"""

from __future__ import annotations

import contextlib
import pathlib
import shlex
import subprocess
from collections.abc import Sequence

from tests.support.cluster import layout

NETNS_DIR = pathlib.Path("/run/netns")
_CGROUPS = pathlib.Path("/sys/fs/cgroup")


def netns_path() -> pathlib.Path:
    return NETNS_DIR / layout.NODE2_NETNS


def ns_dir(node: layout.Node) -> pathlib.Path:
    return node.run / "ns"


def bound_paths(where: layout.Layout) -> tuple[tuple[pathlib.Path, pathlib.Path], ...]:
    """(the node's own directory, the path every node sees it at), in mount order."""
    home = where.node2().home
    return (
        (home / "kubelet", layout.KUBELET_DIR),
        (home / "log" / "pods", pathlib.Path("/var/log/pods")),
        (home / "log" / "containers", pathlib.Path("/var/log/containers")),
        # The local drivers keep node-local volumes: a state directory per node.
        (home / "drivers", where.state / "drivers"),
    )


def enter(where: layout.Layout, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside the second node (nsenter execs it: the pid stays the daemon's)."""
    ns = ns_dir(where.node2())
    return [
        "nsenter",
        f"--mount={ns / 'mnt'}",
        f"--uts={ns / 'uts'}",
        f"--net={netns_path()}",
        "--",
        *argv,
    ]


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _ok(*cmd: str) -> bool:
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def prepare(where: layout.Layout) -> None:
    """Every namespace, link, route and cgroup the second node needs; idempotent."""
    node = where.node2()
    _network()
    _cgroup_root(node)
    _mount_and_uts(where, node)


def _network() -> None:
    ns = layout.NODE2_NETNS
    if not netns_path().exists():
        _run("ip", "netns", "add", ns)
    if not _ok("ip", "link", "show", layout.VETH_HOST):
        _run(
            "ip", "link", "add", layout.VETH_HOST,
            "type", "veth", "peer", "name", layout.VETH_NODE2, "netns", ns,
        )  # fmt: skip
    _address(["ip"], layout.VETH_HOST, f"{layout.LINK_HOST_IP}/{layout.LINK_PREFIX}")
    _run("ip", "link", "set", layout.VETH_HOST, "up")
    inside = ["ip", "-n", ns]
    if not _ok(*inside, "link", "show", layout.BRIDGE):
        _run(*inside, "link", "add", layout.BRIDGE, "type", "bridge")
    _address(inside, layout.VETH_NODE2, f"{layout.LINK_NODE2_IP}/{layout.LINK_PREFIX}")
    _address(inside, layout.BRIDGE, f"{layout.NODE2_IP}/{layout.NODE_PREFIX}")
    for link in ("lo", layout.VETH_NODE2, layout.BRIDGE):
        _run(*inside, "link", "set", link, "up")
    # The node reaches everything else through the machine: the API server,
    # the first node's pods, and (for its host-network pods) service
    # addresses, which need a route before kube-proxy's rules translate them.
    _run(*inside, "route", "replace", "default", "via", layout.LINK_HOST_IP)
    _run("ip", "route", "replace", layout.NODE2_POD_CIDR, "via", layout.LINK_NODE2_IP)
    # Per network namespace: forwarding for its pods, and bridged pod
    # traffic through kube-proxy's rules, as on the first node.
    _run(
        "nsenter", f"--net={netns_path()}", "sysctl", "-qw",
        "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1",
    )  # fmt: skip


def _address(ip: list[str], link: str, cidr: str) -> None:
    shown = subprocess.run(
        [*ip, "-o", "addr", "show", "dev", link], capture_output=True, text=True, check=True
    ).stdout
    if f" {cidr} " not in shown:
        _run(*ip, "addr", "add", cidr, "dev", link)


def cgroup_dirs(node: layout.Node) -> list[pathlib.Path]:
    """The node's cgroup in each hierarchy of this machine (cgroup v1)."""
    if not _CGROUPS.is_dir():
        return []
    return [h / node.cgroup_root.strip("/") for h in sorted(_CGROUPS.iterdir()) if h.is_dir()]


def _cgroup_root(node: layout.Node) -> None:
    # The kubelet refuses a cgroup root that does not exist; a new cpuset
    # cgroup starts with no CPUs or memory nodes, so it copies its parent's.
    for cgroup in cgroup_dirs(node):
        with contextlib.suppress(OSError):
            cgroup.mkdir(exist_ok=True)
            for key in ("cpuset.cpus", "cpuset.mems"):
                if (cgroup / key).is_file() and not (cgroup / key).read_text().strip():
                    (cgroup / key).write_text((cgroup.parent / key).read_text())


def mounted(path: pathlib.Path) -> bool:
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        if line.split()[4] == str(path):
            return True
    return False


def _mount_and_uts(where: layout.Layout, node: layout.Node) -> None:
    ns = ns_dir(node)
    if mounted(ns / "mnt") and mounted(ns / "uts"):
        return
    ns.mkdir(parents=True, exist_ok=True)
    # A namespace file may only be bound on a private mount: bind the
    # directory onto itself and make that private.
    if not mounted(ns):
        _run("mount", "--bind", str(ns), str(ns))
    _run("mount", "--make-private", str(ns))
    for name in ("mnt", "uts"):
        (ns / name).touch()
    script = [f"hostname {shlex.quote(node.name)}"]
    for own, seen in bound_paths(where):
        own.mkdir(parents=True, exist_ok=True)
        seen.mkdir(parents=True, exist_ok=True)
        script.append(f"mount --bind {shlex.quote(str(own))} {shlex.quote(str(seen))}")
    # Bidirectional mount propagation (CSI node plugins) needs a shared
    # mount; inside a slave namespace this makes a peer group of its own,
    # so nothing mounted here reaches the machine.
    script.append(f"mount --make-rshared {shlex.quote(str(layout.KUBELET_DIR))}")
    _run(
        "unshare",
        f"--mount={ns / 'mnt'}",
        f"--uts={ns / 'uts'}",
        "--propagation=slave",
        "sh",
        "-ec",
        "; ".join(script),
    )


def mounts_inside(where: layout.Layout) -> list[str]:
    """Mount points of the node's mount namespace that the machine's does not have."""
    ns = ns_dir(where.node2()) / "mnt"
    if not mounted(ns):
        return []
    done = subprocess.run(
        ["nsenter", f"--mount={ns}", "cat", "/proc/self/mountinfo"],
        capture_output=True,
        text=True,
        check=False,
    )
    host = {
        line.split()[4] for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
    }
    inside = [line.split()[4] for line in done.stdout.splitlines()]
    return [point for point in inside if point not in host or _is_bound(where, point)]


def _is_bound(where: layout.Layout, point: str) -> bool:
    return any(point == str(seen) for _, seen in bound_paths(where))


def remove(where: layout.Layout) -> None:
    """Unmount what the node mounted, drop its namespaces, link and cgroups.

    Its processes must be gone first (`teardown` ends them): the kernel frees
    a namespace, and the loop devices its mounts hold, with the last user.
    """
    node = where.node2()
    ns = ns_dir(node)
    for point in sorted(mounts_inside(where), key=len, reverse=True):
        subprocess.run(
            ["nsenter", f"--mount={ns / 'mnt'}", "umount", "-l", point],
            capture_output=True,
            check=False,
        )
    for name in ("mnt", "uts", ""):
        path = ns / name if name else ns
        # A path may be bound more than once (an `up` killed half-way, then
        # run again): take them all.
        for _ in range(5):
            if not mounted(path):
                break
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
    if netns_path().exists():
        # The veth pair goes with it, and the machine's route over the pair.
        subprocess.run(
            ["ip", "netns", "delete", layout.NODE2_NETNS], capture_output=True, check=False
        )
    subprocess.run(["ip", "link", "delete", layout.VETH_HOST], capture_output=True, check=False)
    for cgroup in cgroup_dirs(node):
        remove_cgroup(cgroup)


def remove_cgroup(root: pathlib.Path) -> None:
    """An emptied cgroup and those below it, deepest first (rmdir is how cgroups go)."""
    if not root.is_dir():
        return
    for cgroup in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if cgroup.is_dir():
            with contextlib.suppress(OSError):
                cgroup.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()
