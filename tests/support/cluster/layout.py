"""Where the test cluster keeps its state, and its fixed addresses.

The node's address lives on the pod bridge, which `up` creates itself: pods
reach the API server there, and nothing of the cluster listens on the
machine's real interfaces. Every address is this machine's own.
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


def default() -> Layout:
    state = os.environ.get("CSI_VM_CLUSTER_STATE", "/var/lib/csi-vm-cluster")
    return Layout(state=pathlib.Path(state), run=pathlib.Path("/run/csi-vm-cluster"))
