"""Storage on both nodes: node-local volumes made for either node, and shared ones.

`csi-vm-nodes` makes each volume on one node, the one the claim's
selected-node annotation (or its first Pod) names, and the driver attaches
it there only. `csi-vm-shared` volumes reach every node: a ReadWriteMany
Block claim is used by Pods on both nodes at once, and what one writes the
other reads, as with a SAN. Both classes' node plugins share one state
directory (tests/support/cluster/addons.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from csi_vm.localdriver.context import TOPOLOGY_KEY
from tests.support.cluster import addons, kubectl, lab, layout, reports

pytestmark = [pytest.mark.timeout(600)]

DEVICE = "/dev/xvda"
OFFSET = 1 << 20
SELECTED_NODE = "volume.kubernetes.io/selected-node"

# Direct I/O through a page-aligned buffer (an anonymous mmap): what a
# guest's disk on shared storage does, so neither node reads its own cache.
_IO = (
    "import mmap, os, sys\n"
    "mode, offset = sys.argv[1], int(sys.argv[2])\n"
    "buf = mmap.mmap(-1, 4096)\n"
    "flags = os.O_DIRECT | (os.O_RDWR if mode == 'write' else os.O_RDONLY)\n"
    f"fd = os.open({DEVICE!r}, flags)\n"
    "if mode == 'write':\n"
    "    buf.write(sys.argv[3].encode().ljust(4096, b'\\0'))\n"
    "    os.pwrite(fd, buf, offset); os.fsync(fd)\n"
    "else:\n"
    "    os.preadv(fd, [buf], offset)\n"
    "    print(buf[:4096].rstrip(b'\\0').decode())\n"
)


@pytest.fixture(scope="module")
def ns(cluster: layout.Layout) -> Iterator[str]:
    kube = kubectl.Kube(cluster)
    name = f"e2e-nodes-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", name)
    yield name
    kube.run("delete", "namespace", name, "--wait=true", "--timeout=300s", check=False)


def _claim(name: str, sc: str, *, mode: str, node: str | None = None) -> kubectl.Json:
    meta: kubectl.Json = {"name": name}
    if node:
        # What the scheduler writes for a WaitForFirstConsumer claim; a
        # controller may write it too, to make the volume before any Pod.
        meta["annotations"] = {SELECTED_NODE: node}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta,
        "spec": {
            "accessModes": [mode],
            "volumeMode": "Block",
            "resources": {"requests": {"storage": "16Mi"}},
            "storageClassName": sc,
        },
    }


def _pod(
    cluster: layout.Layout, name: str, claim: str, *, node: str, pinned: bool = False
) -> kubectl.Json:
    """A Pod using the claim's device; the scheduler places it unless ``pinned``."""
    place = {"nodeName": node} if pinned else {"nodeSelector": {"kubernetes.io/hostname": node}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            **place,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": f"csi-vm.local/csi-vm:{lab.project_image_tag(cluster)}",
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", "import time; time.sleep(86400)"],
                    "volumeDevices": [{"name": "disk", "devicePath": DEVICE}],
                }
            ],
            "volumes": [{"name": "disk", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def _running(kube: kubectl.Kube, ns: str, *names: str) -> dict[str, kubectl.Json]:
    def check() -> dict[str, kubectl.Json] | None:
        pods = {n: kube.get("pod", n, namespace=ns) for n in names}
        ok = all(p["status"].get("phase") == "Running" for p in pods.values())
        return pods if ok else None

    found: dict[str, kubectl.Json] = kube.wait_for(
        f"pods {', '.join(names)} Running",
        check,
        timeout=300,
        explain=lambda: kube.describe("-n", ns, "pods"),
    )
    return found


def _io(kube: kubectl.Kube, ns: str, pod: str, *args: str) -> str:
    return kube.run("-n", ns, "exec", pod, "--", "python3", "-c", _IO, *args, timeout=60).stdout


def _volume_node(kube: kubectl.Kube, ns: str, claim: str) -> list[str]:
    """The nodes the claim's volume is reachable from, as its PV says."""
    pv = kube.get("pv", kube.get("pvc", claim, namespace=ns)["spec"]["volumeName"])
    terms = pv["spec"].get("nodeAffinity", {}).get("required", {}).get("nodeSelectorTerms", [])
    return [
        value
        for term in terms
        for expr in term["matchExpressions"]
        if expr["key"] == TOPOLOGY_KEY
        for value in expr["values"]
    ]


def _attachments(kube: kubectl.Kube, ns: str, claim: str) -> list[kubectl.Json]:
    """The VolumeAttachments (cluster-wide objects) of the claim's volume."""
    volume = kube.get("pvc", claim, namespace=ns)["spec"]["volumeName"]
    found = kube.get("volumeattachments")["items"]
    return [va for va in found if va["spec"]["source"].get("persistentVolumeName") == volume]


def _bound(kube: kubectl.Kube, ns: str, claim: str) -> bool:
    return (kube.get("pvc", claim, namespace=ns).get("status") or {}).get("phase") == "Bound"


def test_a_claim_made_for_node_2_is_written_and_read_there(cluster: layout.Layout, ns: str) -> None:
    kube = kubectl.Kube(cluster)
    kube.apply(
        _claim("for-node-2", addons.NODES.storage_class, mode="ReadWriteOnce", node=layout.NODE2),
        namespace=ns,
    )
    # Bound before any Pod uses it: the annotation alone places it.
    kube.wait_for(
        "the claim for node 2 bound",
        lambda: _bound(kube, ns, "for-node-2"),
        timeout=120,
        explain=lambda: kube.describe("-n", ns, "pvc"),
    )
    assert _volume_node(kube, ns, "for-node-2") == [layout.NODE2]
    kube.apply(_pod(cluster, "writer", "for-node-2", node=layout.NODE2), namespace=ns)
    writer = _running(kube, ns, "writer")["writer"]
    assert writer["spec"]["nodeName"] == layout.NODE2
    _io(kube, ns, "writer", "write", str(OFFSET), "made on node 2")
    kube.run("-n", ns, "delete", "pod", "writer", "--wait=true", "--timeout=120s")
    # A new Pod, a new publish of the volume: the data is on the volume.
    kube.apply(_pod(cluster, "reader", "for-node-2", node=layout.NODE2), namespace=ns)
    _running(kube, ns, "reader")
    assert _io(kube, ns, "reader", "read", str(OFFSET)).strip() == "made on node 2"


def test_the_driver_refuses_a_volume_of_node_2_on_node_1(cluster: layout.Layout, ns: str) -> None:
    kube = kubectl.Kube(cluster)
    kube.apply(
        _claim("elsewhere", addons.NODES.storage_class, mode="ReadWriteOnce", node=layout.NODE2),
        namespace=ns,
    )
    kube.wait_for("the claim bound", lambda: _bound(kube, ns, "elsewhere"), timeout=120)
    # Bound to node 1 by hand, past the scheduler that would have refused.
    kube.apply(_pod(cluster, "astray", "elsewhere", node=layout.NODE, pinned=True), namespace=ns)

    def refusal() -> str:
        for va in _attachments(kube, ns, "elsewhere"):
            status = va.get("status") or {}
            assert not status.get("attached"), va
            return str((status.get("attachError") or {}).get("message", ""))
        return ""

    message = kube.wait_for(
        "the attach to node 1 refused",
        refusal,
        timeout=120,
        explain=lambda: kube.describe("-n", ns, "pod", "astray"),
    )
    assert layout.NODE2 in message and "not reachable" in message, message
    kube.run("-n", ns, "delete", "pod", "astray", "--wait=true", "--timeout=120s")


def test_a_shared_claim_is_used_on_both_nodes_at_once(cluster: layout.Layout, ns: str) -> None:
    kube = kubectl.Kube(cluster)
    kube.apply(_claim("shared", addons.SHARED.storage_class, mode="ReadWriteMany"), namespace=ns)
    kube.apply(
        _pod(cluster, "one", "shared", node=layout.NODE),
        _pod(cluster, "two", "shared", node=layout.NODE2),
        namespace=ns,
    )
    pods = _running(kube, ns, "one", "two")
    assert {p["spec"]["nodeName"] for p in pods.values()} == {layout.NODE, layout.NODE2}
    assert _volume_node(kube, ns, "shared") == []  # every node reaches it
    _io(kube, ns, "one", "write", str(OFFSET), "from node 1")
    assert _io(kube, ns, "two", "read", str(OFFSET)).strip() == "from node 1"
    _io(kube, ns, "two", "write", str(OFFSET * 2), "from node 2")
    assert _io(kube, ns, "one", "read", str(OFFSET * 2)).strip() == "from node 2"
    attached = {
        va["spec"]["nodeName"]
        for va in _attachments(kube, ns, "shared")
        if (va.get("status") or {}).get("attached")
    }
    assert attached == {layout.NODE, layout.NODE2}


def test_verification_proves_sharing_on_two_nodes_only_for_the_shared_class(
    chart: kubectl.Kube,
) -> None:
    """spec.verify writes on one node and reads on another: what plans shared-volume migration."""
    shared = reports.verify(chart, addons.SHARED.storage_class)
    sharing = shared["features"]["multi_node_shared"]
    assert sharing["verified"] is True, sharing
    assert layout.NODE in sharing["evidence"] and layout.NODE2 in sharing["evidence"]
    assert shared["plan"]["live_migration"]["strategy"] == "shared-volume"
    pinned = reports.verify(chart, addons.NODES.storage_class)
    sharing = pinned["features"]["multi_node_shared"]
    assert sharing["verified"] is False, sharing
    assert "node affinity" in sharing["evidence"]
    assert pinned["plan"]["live_migration"]["strategy"] == "storage-migration"
