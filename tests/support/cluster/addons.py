"""What the test cluster runs besides the chart under test.

- the VolumeSnapshot and VolumeGroupSnapshot CRDs and the snapshot-controller,
  from the pinned external-snapshotter release;
- the local reference driver as a real CSI driver in two configurations,
  each deployed the way CSI drivers are: the driver container with its
  controller sidecars (provisioner, attacher, and resizer and snapshotter
  only where the configuration offers the feature), registered with the
  kubelet through the plugin-registration socket;
- on the second node, the same driver as a node plugin only, with a state
  directory of its own (node-local volumes): the controller sidecars run
  once, on the first node, since the attacher and resizer cannot be told to
  serve one node's volumes only;
- a StorageClass per configuration, for Block and Filesystem claims alike
  (ext4 for the latter), and a VolumeSnapshotClass for the full one. Their
  volumes live on the first node (allowedTopologies), so the scheduler keeps
  the Pods that use them there;
- two more full configurations whose node plugins share one state directory
  on both nodes (the machine's, which the second node does not bind over):
  `csi-vm-nodes`, node-local volumes made on either node (the one the
  claim's first Pod, or its selected-node annotation, names; the driver
  refuses every other node), and `csi-vm-shared`, volumes every node
  reaches, so a ReadWriteMany Block claim is used on both nodes at once as
  a SAN's would be.
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Callable
from typing import Any

import yaml

from tests.support.cluster import gobuild, images, lab, layout, pins

Say = Callable[[str], object]
Json = dict[str, Any]
NAMESPACE = "csi-vm-drivers"


@dataclasses.dataclass(frozen=True)
class DriverConfiguration:
    """One deployment of the local driver: its CSI name and what it leaves out."""

    key: str
    driver: str
    without: tuple[str, ...]
    #: which nodes reach a volume: FIRST_NODE, the node it was made for
    #: (EITHER_NODE), or all at once (EVERY_NODE)
    reach: str = "first-node"

    @property
    def snapshots(self) -> bool:
        return "snapshot" not in self.without

    @property
    def expansion(self) -> bool:
        return "expansion" not in self.without

    @property
    def storage_class(self) -> str:
        return f"csi-vm-{self.key}"


FIRST_NODE, EITHER_NODE, EVERY_NODE = "first-node", "either-node", "every-node"
FULL = DriverConfiguration("full", "full.local.csi-vm.io", ())
LITE = DriverConfiguration("lite", "lite.local.csi-vm.io", ("snapshot", "clone", "expansion"))
#: The classes of the first node: what the tests of one node's storage use.
DRIVERS = (FULL, LITE)
NODES = DriverConfiguration("nodes", "nodes.local.csi-vm.io", (), reach=EITHER_NODE)
SHARED = DriverConfiguration("shared", "shared.local.csi-vm.io", (), reach=EVERY_NODE)
TWO_NODE_DRIVERS = (NODES, SHARED)
ALL_DRIVERS = (*DRIVERS, *TWO_NODE_DRIVERS)


def install(where: layout.Layout, *, nodes: list[str], say: Say) -> None:
    say("installing the snapshot CRDs and controller, and the local driver in four configurations")
    crds = [f"--filename={crd}" for crd in sorted(_snapshot_crds().glob("*storage.k8s.io_*.yaml"))]
    lab.kubectl(where, "apply", "--server-side", *crds, timeout=120)
    lab.kubectl(where, "wait", "--for=condition=Established", "crd", "--all", "--timeout=120s")
    docs = [*_snapshot_controller(), *_driver_common()]
    for config in ALL_DRIVERS:
        docs += _driver(where, config)
    _drop_unpinned_classes(where)
    lab.kubectl(
        where,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        "-",
        input_text=yaml.safe_dump_all(docs),
    )
    _wait_drivers(where, nodes=nodes, say=say)


def _snapshot_crds() -> pathlib.Path:
    client = gobuild.module_dir(pins.SNAPSHOT_CLIENT_MODULE, pins.SNAPSHOT_CLIENT_VERSION)
    return client / "config" / "crd"


def _meta(name: str, namespace: str | None = NAMESPACE, **labels: str) -> Json:
    meta: Json = {
        "name": name,
        "labels": {"app.kubernetes.io/part-of": "csi-vm-test-cluster", **labels},
    }
    if namespace:
        meta["namespace"] = namespace
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Json:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


_RW = ["get", "list", "watch", "create", "update", "patch", "delete"]
_RO = ["get", "list", "watch"]


def _bind(name: str, role: str) -> list[Json]:
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(name, None),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
        },
    ]


def _snapshot_controller() -> list[Json]:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta("csi-vm-test-snapshot-controller", None),
        "rules": [
            _rule(
                [""],
                ["persistentvolumes", "persistentvolumeclaims"],
                ["get", "list", "watch", "update", "patch"],
            ),
            _rule([""], ["events"], ["list", "watch", "create", "update", "patch"]),
            _rule(["storage.k8s.io"], ["storageclasses"], _RO),
            _rule(["snapshot.storage.k8s.io", "groupsnapshot.storage.k8s.io"], ["*"], _RW),
            _rule(["coordination.k8s.io"], ["leases"], _RW),
        ],
    }
    deployment = _deployment(
        "snapshot-controller",
        containers=[
            {
                "name": "snapshot-controller",
                "image": images.SIDECARS,
                "imagePullPolicy": "Never",
                "command": [
                    "/bin/snapshot-controller",
                    "--v=2",
                    "--feature-gates=CSIVolumeGroupSnapshot=true",
                ],
            }
        ],
        service_account="snapshot-controller",
    )
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, None)},
        role,
        *_bind("snapshot-controller", "csi-vm-test-snapshot-controller"),
        deployment,
    ]


def _deployment(name: str, *, containers: list[Json], service_account: str) -> Json:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": service_account, "containers": containers},
            },
        },
    }


def _driver_common() -> list[Json]:
    """One ClusterRole for every sidecar of the drivers: what the sidecars document."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta("csi-vm-test-driver", None),
        "rules": [
            _rule([""], ["persistentvolumes"], _RW),
            _rule([""], ["persistentvolumeclaims"], ["get", "list", "watch", "update", "patch"]),
            _rule([""], ["persistentvolumeclaims/status"], ["update", "patch"]),
            _rule([""], ["events"], ["list", "watch", "create", "update", "patch"]),
            _rule([""], ["nodes", "pods"], _RO),
            _rule(
                ["storage.k8s.io"], ["storageclasses", "csinodes", "volumeattributesclasses"], _RO
            ),
            _rule(
                ["storage.k8s.io"],
                ["volumeattachments"],
                ["get", "list", "watch", "update", "patch"],
            ),
            _rule(["storage.k8s.io"], ["volumeattachments/status"], ["patch"]),
            _rule(["snapshot.storage.k8s.io", "groupsnapshot.storage.k8s.io"], ["*"], _RW),
            _rule(["coordination.k8s.io"], ["leases"], _RW),
        ],
    }
    return [role, *_bind("csi-driver", "csi-vm-test-driver")]


def _sidecar(name: str, binary: str, *args: str) -> Json:
    return {
        "name": name,
        "image": images.SIDECARS,
        "imagePullPolicy": "Never",
        "command": [f"/bin/{binary}", "--csi-address=/csi/csi.sock", "--v=2", *args],
        "volumeMounts": [{"name": "socket-dir", "mountPath": "/csi"}],
    }


def driver_state_dir(where: layout.Layout, config: DriverConfiguration) -> pathlib.Path:
    if config.reach == FIRST_NODE:
        # The second node binds a directory of its own over this one.
        return where.state / "drivers" / config.key
    return where.state / "shared-drivers" / config.key


def _driver(where: layout.Layout, config: DriverConfiguration) -> list[Json]:
    name = f"driver-{config.key}"
    plugin_dir = layout.KUBELET_DIR / "plugins" / config.driver
    state = driver_state_dir(where, config)
    command = [
        "csi-vm",
        "localdriver",
        "--endpoint=unix:///csi/csi.sock",
        f"--state-dir={state}",
        "--node-id=$(NODE_NAME)",
        f"--driver-name={config.driver}",
        "--kubelet-registration-dir=/registration",
        f"--kubelet-csi-endpoint={plugin_dir / 'csi.sock'}",
    ]
    if config.without:
        command.append(f"--without={','.join(config.without)}")
    if config.reach != FIRST_NODE:
        command.append("--shared")
    if config.reach == EITHER_NODE:
        command.append("--pin-volumes")
    driver = {
        "name": "driver",
        "image": f"{images.CSI_VM_REPO}:{lab.project_image_tag(where)}",
        "imagePullPolicy": "Never",
        "command": command,
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        # Loop devices, mounts into the kubelet's directories, block device
        # nodes: a CSI node plugin needs the host, as every real one does.
        "securityContext": {"privileged": True},
        "volumeMounts": [
            {"name": "socket-dir", "mountPath": "/csi"},
            {"name": "registration", "mountPath": "/registration"},
            {
                "name": "kubelet",
                "mountPath": str(layout.KUBELET_DIR),
                "mountPropagation": "Bidirectional",
            },
            {"name": "dev", "mountPath": "/dev"},
            # At the same path as on the host, so the loop devices' backing
            # files carry host paths that `cluster down` can find.
            {"name": "state", "mountPath": str(state)},
        ],
    }
    sidecars = [
        _sidecar(
            "csi-provisioner",
            "csi-provisioner",
            "--feature-gates=Topology=true",
            "--extra-create-metadata",
            "--timeout=120s",
            "--default-fstype=ext4",
        ),
        _sidecar("csi-attacher", "csi-attacher", "--timeout=120s"),
    ]
    if config.expansion:
        sidecars.append(_sidecar("csi-resizer", "csi-resizer", "--timeout=120s"))
    if config.snapshots:
        sidecars.append(_sidecar("csi-snapshotter", "csi-snapshotter", "--timeout=120s"))
    volumes: list[Json] = [
        {
            "name": "socket-dir",
            "hostPath": {"path": str(plugin_dir), "type": "DirectoryOrCreate"},
        },
        {
            "name": "registration",
            "hostPath": {
                "path": str(layout.KUBELET_DIR / "plugins_registry"),
                "type": "DirectoryOrCreate",
            },
        },
        {
            "name": "kubelet",
            "hostPath": {"path": str(layout.KUBELET_DIR), "type": "Directory"},
        },
        {"name": "dev", "hostPath": {"path": "/dev", "type": "Directory"}},
        {
            "name": "state",
            "hostPath": {"path": str(state), "type": "DirectoryOrCreate"},
        },
    ]
    docs: list[Json] = [
        _daemonset(name, [driver, *sidecars], volumes, _ON_FIRST_NODE),
        # The other nodes' node plugins, no sidecars: their own volumes, or
        # (a state dir the nodes share) the controller's.
        _daemonset(f"{name}-node", [driver], volumes, _ON_OTHER_NODES),
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIDriver",
            "metadata": _meta(config.driver, None),
            "spec": {
                "attachRequired": True,
                "podInfoOnMount": False,
                "volumeLifecycleModes": ["Persistent"],
                "fsGroupPolicy": "File",
            },
        },
    ]
    if config.snapshots:
        docs.append(
            {
                "apiVersion": "snapshot.storage.k8s.io/v1",
                "kind": "VolumeSnapshotClass",
                "metadata": _meta(config.storage_class, None),
                "driver": config.driver,
                "deletionPolicy": "Delete",
            }
        )
    docs.append(_storage_class(config))
    return docs


def _storage_class(config: DriverConfiguration) -> Json:
    placement: Json = {
        # The node of the claim's first Pod, or of its selected-node annotation.
        EITHER_NODE: {"volumeBindingMode": "WaitForFirstConsumer"},
        # Every node reaches the volume: nothing to wait for.
        EVERY_NODE: {"volumeBindingMode": "Immediate"},
    }.get(
        config.reach,
        {"volumeBindingMode": "WaitForFirstConsumer", "allowedTopologies": [_FIRST_NODE_TOPOLOGY]},
    )
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": _meta(config.storage_class, None),
        "provisioner": config.driver,
        # Block claims ignore it; Filesystem claims get ext4.
        "parameters": {"csi.storage.k8s.io/fstype": "ext4"},
        "reclaimPolicy": "Delete",
        "allowVolumeExpansion": config.expansion,
        **placement,
    }


# The local driver's topology key (csi_vm.localdriver.context.TOPOLOGY_KEY)
# with the first node's id: where the classes' volumes are made.
_FIRST_NODE_TOPOLOGY: Json = {
    "matchLabelExpressions": [{"key": "csi-vm.local/node", "values": [layout.NODE]}]
}


_HOSTNAME = "kubernetes.io/hostname"
_ON_FIRST_NODE: Json = {"nodeSelector": {_HOSTNAME: layout.NODE}}
_ON_OTHER_NODES: Json = {
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": _HOSTNAME, "operator": "NotIn", "values": [layout.NODE]}
                        ]
                    }
                ]
            }
        }
    }
}


def _daemonset(name: str, containers: list[Json], volumes: list[Json], placement: Json) -> Json:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(name),
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": "csi-driver",
                    "containers": containers,
                    "volumes": volumes,
                    **placement,
                },
            },
        },
    }


def _drop_unpinned_classes(where: layout.Layout) -> None:
    """Delete the classes an older `up` made without allowedTopologies.

    A StorageClass cannot change but by being made anew; claims and volumes
    name their class and are not affected.
    """
    for config in DRIVERS:
        done = lab.kubectl(
            where,
            "get",
            "storageclass",
            config.storage_class,
            "--ignore-not-found",
            "-o",
            "jsonpath={.metadata.name}/{.allowedTopologies}",
            check=False,
        )
        if done.stdout.strip() == f"{config.storage_class}/":
            lab.kubectl(where, "delete", "storageclass", config.storage_class)


def _registered(where: layout.Layout, node: str) -> set[str]:
    done = lab.kubectl(
        where, "get", "csinode", node, "-o", "jsonpath={.spec.drivers[*].name}", check=False
    )
    return set(done.stdout.split())


def _wait_drivers(where: layout.Layout, *, nodes: list[str], say: Say) -> None:
    say(f"waiting for the drivers to register with the kubelet of {' and '.join(nodes)}")
    deadline = time.monotonic() + 300
    wanted = {c.driver for c in ALL_DRIVERS}
    while time.monotonic() < deadline:
        if all(wanted <= _registered(where, node) for node in nodes):
            lab.kubectl(
                where,
                "-n",
                NAMESPACE,
                "rollout",
                "status",
                "deployment/snapshot-controller",
                "--timeout=180s",
                timeout=200,
            )
            return
        time.sleep(2)
    pods = lab.kubectl(where, "-n", NAMESPACE, "get", "pods", "-o", "wide", check=False).stdout
    raise lab.ClusterError(f"the local drivers did not register with the kubelet in 300 s:\n{pods}")
