"""Where the test cluster keeps its state, and its fixed addresses.

Each node's address lives on its pod bridge, which `up` creates itself: pods
reach the API server on the first node's, and nothing of the cluster listens
on the machine's real interfaces. Every address is this machine's own.

The second node is a network namespace of its own, joined to the machine by
a veth pair; its kubelet and containerd also get their own mount and UTS
namespaces, so they see their own /var/lib/kubelet and hostname.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

NODE = "csi-vm-node"
BRIDGE = "csivm0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
NODE_PREFIX = "24"
# Every pod and node address of the cluster: pods route it through their node.
CLUSTER_CIDR = "10.244.0.0/16"
NODE2 = "csi-vm-node-2"
NODE2_POD_CIDR = "10.244.1.0/24"
NODE2_IP = "10.244.1.1"
# The point-to-point link between the machine and node 2's network namespace.
NODE2_NETNS = "csi-vm-node-2"
VETH_HOST = "csivm-n2"
VETH_NODE2 = "eth0"
LINK_HOST_IP = "10.244.255.1"
LINK_NODE2_IP = "10.244.255.2"
LINK_PREFIX = "30"
SERVICE_CIDR = "10.96.0.0/24"
API_SERVICE_IP = "10.96.0.1"
API_PORT = 6443
# etcd on loopback, off its usual ports so a machine's own etcd is not hit.
ETCD_CLIENT = "http://127.0.0.1:23790"
ETCD_PEER = "http://127.0.0.1:23800"
KUBELET_DIR = pathlib.Path("/var/lib/kubelet")


@dataclasses.dataclass(frozen=True)
class Layout:
    state: pathlib.Path
    run: pathlib.Path

    @property
    def pki(self) -> pathlib.Path:
        return self.state / "pki"

    @property
    def logs(self) -> pathlib.Path:
        return self.state / "logs"

    @property
    def config(self) -> pathlib.Path:
        return self.state / "config"

    @property
    def admin_kubeconfig(self) -> pathlib.Path:
        return self.state / "admin.kubeconfig"

    @property
    def containerd_socket(self) -> pathlib.Path:
        return self.run / "containerd.sock"

    @property
    def cni_conf_dir(self) -> pathlib.Path:
        return self.state / "cni" / "net.d"

    @property
    def server(self) -> str:
        return f"https://{NODE_IP}:{API_PORT}"

    def node1(self) -> Node:
        return Node(NODE, NODE_IP, POD_CIDR, home=self.state, run=self.run, config=self.config)

    def node2(self) -> Node:
        home = self.state / "nodes" / NODE2
        return Node(
            NODE2,
            NODE2_IP,
            NODE2_POD_CIDR,
            home=home,
            run=self.run / "nodes" / NODE2,
            config=home / "config",
            daemon_prefix="node2-",
            cgroup_root=f"/{NODE2}",
        )

    def nodes(self) -> tuple[Node, Node]:
        return (self.node1(), self.node2())


@dataclasses.dataclass(frozen=True)
class Node:
    """One node's name, addresses and the places of its containerd and kubelet files.

    The first node keeps the paths a one-node cluster always had; the second
    keeps its own below the state and run directories.
    """

    name: str
    ip: str
    pod_cidr: str
    home: pathlib.Path
    run: pathlib.Path
    config: pathlib.Path
    # Its daemons' pid files and logs are named "<prefix><daemon>".
    daemon_prefix: str = ""
    # The cgroup its kubelet puts pods under; "" for the kubelet's default.
    cgroup_root: str = ""

    def daemon(self, name: str) -> str:
        return f"{self.daemon_prefix}{name}"

    @property
    def containerd_socket(self) -> pathlib.Path:
        return self.run / "containerd.sock"

    @property
    def cni_conf_dir(self) -> pathlib.Path:
        return self.home / "cni" / "net.d"

    @property
    def pods_cgroup(self) -> str:
        """Below every cgroup hierarchy, the kubelet's cgroup of all pods."""
        return f"{self.cgroup_root.strip('/')}/kubepods".lstrip("/")


def default() -> Layout:
    state = os.environ.get("CSI_VM_CLUSTER_STATE", "/var/lib/csi-vm-cluster")
    return Layout(state=pathlib.Path(state), run=pathlib.Path("/run/csi-vm-cluster"))
