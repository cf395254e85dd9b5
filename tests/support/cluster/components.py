"""Command lines and configuration files of the cluster's host processes.

Flags are the ones each component documents for a kubeadm-like control
plane on one node, with two choices forced by this machine kind: cgroup v1
without systemd (so the cgroupfs driver for the kubelet and runc), and no
image registry (so image garbage collection never drops an imported image).
"""

from __future__ import annotations

import json
import pathlib

import yaml

from tests.support.cluster import images, layout, pki

ADMIN = pki.Identity("admin", "kubernetes-admin", "system:masters")
CONTROLLER_MANAGER = pki.Identity("controller-manager", "system:kube-controller-manager")
SCHEDULER = pki.Identity("scheduler", "system:kube-scheduler")
KUBELET = pki.Identity("kubelet", f"system:node:{layout.NODE}", "system:nodes")
# The node authorizer lets a kubelet touch only its own Node's objects: one
# identity per node.
KUBELET2 = pki.Identity("kubelet-node-2", f"system:node:{layout.NODE2}", "system:nodes")
PROXY = pki.Identity("kube-proxy", "system:kube-proxy")
APISERVER_KUBELET = pki.Identity(
    "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"
)
IDENTITIES = (ADMIN, CONTROLLER_MANAGER, SCHEDULER, KUBELET, KUBELET2, PROXY, APISERVER_KUBELET)


def kubelet_identity(node: layout.Node) -> pki.Identity:
    return KUBELET if node.name == layout.NODE else KUBELET2


def kubeconfig(where: layout.Layout, identity: pki.Identity) -> pathlib.Path:
    return (
        where.admin_kubeconfig
        if identity is ADMIN
        else where.config / f"{identity.stem}.kubeconfig"
    )


def etcd(bin_dir: pathlib.Path, where: layout.Layout) -> list[str]:
    return [
        str(bin_dir / "etcd"),
        "--name=csi-vm-test",
        f"--data-dir={where.state / 'etcd'}",
        f"--listen-client-urls={layout.ETCD_CLIENT}",
        f"--advertise-client-urls={layout.ETCD_CLIENT}",
        f"--listen-peer-urls={layout.ETCD_PEER}",
        f"--initial-advertise-peer-urls={layout.ETCD_PEER}",
        f"--initial-cluster=csi-vm-test={layout.ETCD_PEER}",
        "--listen-metrics-urls=",
        # A test cluster on a loaded 2-core machine: keep fsync stalls from
        # turning into leader loss warnings that mean nothing here.
        "--heartbeat-interval=250",
        "--election-timeout=2500",
        "--quota-backend-bytes=2147483648",
    ]


def apiserver(bin_dir: pathlib.Path, where: layout.Layout) -> list[str]:
    p = where.pki
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={layout.ETCD_CLIENT}",
        f"--bind-address={layout.NODE_IP}",
        f"--advertise-address={layout.NODE_IP}",
        f"--secure-port={layout.API_PORT}",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--client-ca-file={p / 'ca.crt'}",
        f"--tls-cert-file={p / 'apiserver.crt'}",
        f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p / 'sa.pub'}",
        f"--service-account-signing-key-file={p / 'sa.key'}",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager(bin_dir: pathlib.Path, where: layout.Layout) -> list[str]:
    p = where.pki
    config = kubeconfig(where, CONTROLLER_MANAGER)
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--root-ca-file={p / 'ca.crt'}",
        f"--service-account-private-key-file={p / 'sa.key'}",
        f"--cluster-signing-cert-file={p / 'ca.crt'}",
        f"--cluster-signing-key-file={p / 'ca.key'}",
        f"--service-cluster-ip-range={layout.SERVICE_CIDR}",
        "--v=1",
    ]


def scheduler(bin_dir: pathlib.Path, where: layout.Layout) -> list[str]:
    config = kubeconfig(where, SCHEDULER)
    return [
        str(bin_dir / "kube-scheduler"),
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--bind-address=127.0.0.1",
        "--leader-elect=false",
        "--v=1",
    ]


def containerd_config(node: layout.Node) -> str:
    # Debian's containerd 1.6 reads config version 2.
    return f"""version = 2
root = "{node.home / "containerd"}"
state = "{node.run / "containerd-state"}"
[grpc]
  address = "{node.containerd_socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{images.PAUSE}"
  enable_cdi = false
  # This machine kind withholds CAP_SYS_RESOURCE even from root, so no
  # process may lower its OOM score below containerd's own: clamp the
  # kubelet's negative scores (sandboxes, Guaranteed pods) instead of failing.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{node.cni_conf_dir}"
"""


def containerd(node: layout.Node) -> list[str]:
    return ["containerd", f"--config={node.config / 'containerd.toml'}"]


def cni_config(node: layout.Node) -> str:
    gateway = node.ip
    conf = {
        "cniVersion": "0.4.0",
        "name": "csi-vm-test",
        "plugins": [
            {
                "type": "bridge",
                # One bridge per node, each in its node's network namespace.
                "bridge": layout.BRIDGE,
                "isGateway": True,
                # Pods talk to the API server and to each other, never beyond
                # this machine: no masquerading.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": node.pod_cidr, "gateway": gateway}]],
                    # Service addresses are reached through the node, where
                    # kube-proxy's rules translate them; the other nodes and
                    # their pods through the node's routes.
                    "routes": [{"dst": layout.SERVICE_CIDR}, {"dst": layout.CLUSTER_CIDR}],
                    "dataDir": str(node.home / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(conf, indent=2)


def kubelet_config(where: layout.Layout, node: layout.Node) -> str:
    conf: dict[str, object] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(where.pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        "failSwapOn": False,
        "address": node.ip,
        "healthzBindAddress": "127.0.0.1",
        "resolvConf": "/etc/resolv.conf",
        "serializeImagePulls": False,
        # No registry can give an image back: never collect one.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A developer's disk may be fuller than a server's.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "maxPods": 60,
        "volumeStatsAggPeriod": "30s",
        "fileCheckFrequency": "5s",
    }
    if node.cgroup_root:
        # Two kubelets on one machine share its cgroup hierarchies: each
        # keeps its pods below a cgroup of its own.
        conf["cgroupRoot"] = node.cgroup_root
    return yaml.safe_dump(conf)


def kubelet(bin_dir: pathlib.Path, where: layout.Layout, node: layout.Node) -> list[str]:
    # The root directory is the same path on every node: a node's mount
    # namespace shows its own directory there.
    return [
        str(bin_dir / "kubelet"),
        f"--config={node.config / 'kubelet.yaml'}",
        f"--kubeconfig={kubeconfig(where, kubelet_identity(node))}",
        f"--hostname-override={node.name}",
        f"--node-ip={node.ip}",
        f"--root-dir={layout.KUBELET_DIR}",
        "--v=1",
    ]


def proxy_config(where: layout.Layout, node: layout.Node) -> str:
    conf = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": layout.CLUSTER_CIDR,
        "hostnameOverride": node.name,
        "clientConnection": {"kubeconfig": str(kubeconfig(where, PROXY))},
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # Leave the machine's conntrack table size alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }
    return yaml.safe_dump(conf)


def proxy(bin_dir: pathlib.Path, node: layout.Node) -> list[str]:
    return [str(bin_dir / "kube-proxy"), f"--config={node.config / 'kube-proxy.yaml'}", "--v=1"]
