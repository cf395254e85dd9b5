"""`up`, `down`, `env` and `logs` of the test cluster (one node, or two).

`up` is idempotent: every step checks what is already there (cached
binaries and images, certificates, running daemons) and only adds what is
missing, then waits until the nodes are Ready; it adds the second node to a
running one-node cluster without restarting the first. `down` stops
everything and removes what the cluster made, and works after `up` was
killed half-way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

from tests.support import helmbin
from tests.support.cluster import (
    components,
    daemons,
    gobuild,
    images,
    layout,
    node2,
    pins,
    pki,
    teardown,
)

Say = Callable[[str], object]
PROJECT = pathlib.Path(__file__).resolve().parents[3]
# Started in this order, stopped in the reverse one.
ORDER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "kube-proxy",
)
# A node's own daemons, started in this order once the control plane runs.
NODE_DAEMONS = ("containerd", "kubelet", "kube-proxy")
# Two nodes unless told otherwise: see docs/kubernetes.md for what it costs.
DEFAULT_NODES = 2


def all_daemons(where: layout.Layout) -> tuple[str, ...]:
    """Every daemon of the cluster, the second node's included, by pid-file name."""
    return (*ORDER, *(where.node2().daemon(name) for name in NODE_DAEMONS))


class ClusterError(RuntimeError):
    """The cluster could not be brought up: the message says what to look at."""


def kube_bin() -> pathlib.Path:
    return gobuild.bin_dir(pins.KUBE)


def kubectl(
    where: layout.Layout,
    *args: str,
    check: bool = True,
    timeout: float = 120,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    cmd = [str(kube_bin() / "kubectl"), f"--kubeconfig={where.admin_kubeconfig}", *args]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, input=input_text
    )
    if check and done.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def env_lines(where: layout.Layout) -> list[str]:
    helm_dir = helmbin.helm().parent
    path = f"{kube_bin()}:{helm_dir}:{os.environ.get('PATH', '')}"
    # A command run on node 2 (its mounts, hostname and network):
    # $CSI_VM_NODE2 ls /var/lib/kubelet/plugins
    enter = " ".join(node2.enter(where, []))
    return [
        f"export KUBECONFIG={where.admin_kubeconfig}",
        f"export PATH={path}",
        f"export CSI_VM_NODE2='{enter}'",
    ]


@contextlib.contextmanager
def _exclusive(say: Say) -> Iterator[None]:
    """One `up` or `down` at a time on this machine: they share caches and daemons."""
    root = gobuild.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / "lab.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another scripts/cluster up or down on this machine")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(
    where: layout.Layout | None = None, *, say: Say = print, nodes: int = DEFAULT_NODES
) -> layout.Layout:
    """Bring the cluster up with ``nodes`` nodes (1 or 2); a running node stays as it is."""
    if nodes not in (1, 2):
        raise ClusterError(f"--nodes {nodes}: the test cluster has 1 or 2 nodes")
    with _exclusive(say):
        return _up(where or layout.default(), say=say, nodes=nodes)


def _up(where: layout.Layout, *, say: Say, nodes: int) -> layout.Layout:
    _require_root()
    if where.state.exists() and not any(
        daemons.running(n, run_dir=where.run) for n in all_daemons(where)
    ):
        # The machine was rebooted or every daemon killed (a stopped session):
        # mounts, loop devices and containers of that cluster may linger, so
        # start from a clean slate, as `down` after a crash leaves it.
        say("an earlier cluster was not stopped: removing what it left first")
        teardown.run(where, order=ORDER, say=say)
    wanted = list(where.nodes()[:nodes])
    if nodes == 1 and _present(where, where.node2()):
        say(f"node {layout.NODE2} runs already: keeping it (scripts/cluster down removes it)")
        wanted.append(where.node2())
    where.logs.mkdir(parents=True, exist_ok=True)
    build_log = where.logs / "build.log"
    bins = gobuild.build_all(log=build_log, say=say)
    helmbin.helm()
    _pki(where)
    _host_network(where)
    _control_plane(where, bins, say=say)
    archives = _archives(bins, log=build_log, say=say)
    for node in wanted:
        _node(where, node, bins, say=say)
        _import_images(node, archives, say=say)
    for node in wanted:
        _wait_node_ready(where, node, say=say)
    pki.write_if_changed(where.state / "project-image-tag", images.project_tag(archives[-1][1]))
    from tests.support.cluster import addons  # noqa: PLC0415 - needs the cluster up

    addons.install(where, nodes=[n.name for n in wanted], say=say)
    names = " and ".join(n.name for n in wanted)
    say(f'cluster up: {names} Ready; eval "$(scripts/cluster env)" to use it')
    return where


def _present(where: layout.Layout, node: layout.Node) -> bool:
    return any(daemons.running(node.daemon(n), run_dir=where.run) for n in NODE_DAEMONS)


def down(where: layout.Layout | None = None, *, say: Say = print) -> None:
    where = where or layout.default()
    _require_root()
    with _exclusive(say):
        teardown.run(where, order=ORDER, say=say)


def logs(where: layout.Layout | None = None, *, name: str = "", lines: int = 40) -> str:
    where = where or layout.default()
    names = [name] if name else [*all_daemons(where)]
    out = []
    for one in names:
        log = where.logs / f"{one}.log"
        if not log.is_file():
            out.append(f"==> {one}: no log at {log}")
            continue
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"==> {log} <==\n" + "\n".join(tail))
    return "\n".join(out)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError("the test cluster runs kubelet and containerd: run it as root")
    gobuild.go_binary()
    for tool in ("containerd", "runc", "iptables", "openssl", "debootstrap"):
        if not shutil.which(tool):
            raise ClusterError(f"{tool} is missing: run scripts/setup first")


def _pki(where: layout.Layout) -> None:
    pki.make_ca(where.pki)
    pki.make_service_account_keys(where.pki)
    pki.make_server(
        where.pki,
        "apiserver",
        names=[
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "localhost",
        ],
        addresses=[layout.NODE_IP, layout.API_SERVICE_IP, "127.0.0.1"],
    )
    where.config.mkdir(parents=True, exist_ok=True)
    for identity in components.IDENTITIES:
        pki.make_client(where.pki, identity)
        pki.write_kubeconfig(
            components.kubeconfig(where, identity),
            pki=where.pki,
            identity=identity,
            server=where.server,
        )


def _host_network(where: layout.Layout) -> None:
    """The pod bridge carrying the node's address, and the sysctls pods need."""
    link = subprocess.run(["ip", "link", "show", layout.BRIDGE], capture_output=True, check=False)
    if link.returncode != 0:
        subprocess.run(["ip", "link", "add", layout.BRIDGE, "type", "bridge"], check=True)
    addrs = subprocess.run(
        ["ip", "-o", "addr", "show", "dev", layout.BRIDGE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if f" {layout.NODE_IP}/" not in addrs:
        subprocess.run(
            ["ip", "addr", "add", f"{layout.NODE_IP}/{layout.NODE_PREFIX}", "dev", layout.BRIDGE],
            check=True,
        )
    subprocess.run(["ip", "link", "set", layout.BRIDGE, "up"], check=True)
    # Service traffic between pods on one bridge must pass kube-proxy's rules.
    for key, value in (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1")):
        with contextlib.suppress(OSError):
            pathlib.Path("/proc/sys", key).write_text(value)


def _write_configs(where: layout.Layout, node: layout.Node) -> None:
    node.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    node.config.mkdir(parents=True, exist_ok=True)
    write = pki.write_if_changed
    write(node.cni_conf_dir / "10-csi-vm-test.conflist", components.cni_config(node))
    write(node.config / "containerd.toml", components.containerd_config(node))
    write(node.config / "kubelet.yaml", components.kubelet_config(where, node))
    write(node.config / "kube-proxy.yaml", components.proxy_config(where, node))


def _start(where: layout.Layout, name: str, argv: list[str]) -> None:
    daemons.start(name, argv, run_dir=where.run, log_dir=where.logs)


def _wait(
    where: layout.Layout, name: str, what: str, ready: Callable[[], bool], timeout: float
) -> None:
    daemons.wait_for(what, ready, name=name, run_dir=where.run, log_dir=where.logs, timeout=timeout)


def _control_plane(where: layout.Layout, bins: dict[str, pathlib.Path], *, say: Say) -> None:
    kube = bins["kubernetes"]
    say("starting etcd and the control plane")
    _start(where, "etcd", components.etcd(bins["etcd"], where))
    _wait(where, "etcd", "health", lambda: _http_ok(f"{layout.ETCD_CLIENT}/health"), 60)
    _start(where, "kube-apiserver", components.apiserver(kube, where))
    _wait(
        where,
        "kube-apiserver",
        "readiness",
        lambda: kubectl(where, "get", "--raw=/readyz", check=False, timeout=10).returncode == 0,
        180,
    )
    _start(where, "kube-controller-manager", components.controller_manager(kube, where))
    _start(where, "kube-scheduler", components.scheduler(kube, where))


def _node(
    where: layout.Layout, node: layout.Node, bins: dict[str, pathlib.Path], *, say: Say
) -> None:
    kube = bins["kubernetes"]
    say(f"starting containerd, the kubelet and kube-proxy of {node.name}")
    second = node.name == layout.NODE2
    if second:
        node2.prepare(where)
    _write_configs(where, node)

    def start(name: str, argv: list[str]) -> None:
        _start(where, node.daemon(name), node2.enter(where, argv) if second else argv)

    start("containerd", components.containerd(node))
    _wait(where, node.daemon("containerd"), "its socket", node.containerd_socket.is_socket, 60)
    start("kubelet", components.kubelet(kube, where, node))
    start("kube-proxy", components.proxy(kube, node))


def ctr(
    where: layout.Layout | layout.Node, *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """ctr against one node's containerd (a Layout means the first node's)."""
    return subprocess.run(
        ["ctr", f"--address={where.containerd_socket}", "-n", "k8s.io", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


Archives = list[tuple[str, pathlib.Path]]


def _archives(bins: dict[str, pathlib.Path], *, log: pathlib.Path, say: Say) -> Archives:
    """(image reference, archive) of every image the nodes need; the project's last."""
    project = images.csi_vm_archive(PROJECT, log=log, say=say)
    return [
        (images.PAUSE, images.pause_archive(log=log)),
        (images.SIDECARS, images.sidecars_archive(bins, log=log)),
        (f"{images.CSI_VM_REPO}:{images.project_tag(project)}", project),
    ]


def _import_images(node: layout.Node, archives: Archives, *, say: Say) -> None:
    # Each node's containerd has a content store of its own.
    have = ctr(node, "images", "ls", "-q").stdout.split()
    marker = node.home / "imported"
    marker.mkdir(parents=True, exist_ok=True)
    for ref, archive in archives:
        stamp = marker / archive.name
        if ref in have and stamp.is_file():
            continue
        say(f"importing {ref} into {node.name}")
        done = ctr(node, "images", "import", str(archive))
        if done.returncode != 0:
            raise ClusterError(
                f"importing {ref} into {node.name}'s containerd failed: {done.stderr.strip()}"
            )
        for old in marker.glob(f"{archive.name.split('-')[0]}-*"):
            old.unlink()
        stamp.write_text(ref)


def project_image_tag(where: layout.Layout) -> str:
    """The tag of the project's images that `up` imported last."""
    return (where.state / "project-image-tag").read_text().strip()


def _wait_node_ready(where: layout.Layout, node: layout.Node, *, say: Say) -> None:
    say(f"waiting for node {node.name} to be Ready")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        done = kubectl(
            where,
            "get",
            "node",
            node.name,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False,
        )
        if done.stdout.strip() == "True":
            return
        for name in (node.daemon("kubelet"), node.daemon("containerd"), "kube-apiserver"):
            if not daemons.running(name, run_dir=where.run):
                raise ClusterError(f"{name} exited: see {where.logs / f'{name}.log'}")
        time.sleep(2)
    kubelet_log = where.logs / f"{node.daemon('kubelet')}.log"
    raise ClusterError(f"node {node.name} not Ready after 300 s: see {kubelet_log}")


def _http_ok(url: str) -> bool:
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(url, timeout=5) as answer:
        return bool(answer.status == 200)
