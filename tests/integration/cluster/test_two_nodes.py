"""The test cluster's two nodes: both Ready, pods run on each and reach each other.

The second node is a network, mount and UTS namespace of its own on this
machine; these tests check what a real second machine would give: its own
Node, pods that run there, pod traffic between the nodes, the API server
reached from there through its service address, its own hostname, and the
chart's node DaemonSet Ready on both nodes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

import pytest

from tests.support.cluster import addons, kubectl, lab, layout

NODES = (layout.NODE, layout.NODE2)
PORT = 8080

# Answers GET / with the pod's own name, so a reply proves which pod answered.
_SERVE = (
    "import http.server, os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['POD_NAME'].encode()\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
    f"http.server.HTTPServer(('', {PORT}), H).serve_forever()\n"
)
_FETCH = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())\n"
)
# The API server through the `kubernetes` service, with the pod's own
# service account: what an in-cluster client does.
_API = (
    "import json, os, ssl, urllib.request\n"
    "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
    "ctx = ssl.create_default_context(cafile=f'{sa}/ca.crt')\n"
    "host = os.environ['KUBERNETES_SERVICE_HOST']; port = os.environ['KUBERNETES_SERVICE_PORT']\n"
    "req = urllib.request.Request(f'https://{host}:{port}/version',\n"
    "    headers={'Authorization': 'Bearer ' + open(f'{sa}/token').read()})\n"
    "answer = urllib.request.urlopen(req, context=ctx, timeout=20)\n"
    "print(json.dumps({'host': host, 'version': json.load(answer)}))\n"
)


def _ready(node: kubectl.Json) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_both_nodes_are_ready(cluster: layout.Layout) -> None:
    kube = kubectl.Kube(cluster)
    nodes = {n["metadata"]["name"]: n for n in kube.get("nodes")["items"]}
    assert set(nodes) == set(NODES)
    assert all(_ready(n) for n in nodes.values()), kube.describe("nodes")
    addresses = {
        name: [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        for name, n in nodes.items()
    }
    assert addresses == {layout.NODE: [layout.NODE_IP], layout.NODE2: [layout.NODE2_IP]}


def _pod(name: str, node: str, image: str, *, host_network: bool = False) -> kubectl.Json:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "two-nodes"}},
        "spec": {
            "nodeName": node,
            "hostNetwork": host_network,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", _SERVE],
                    "env": [
                        {
                            "name": "POD_NAME",
                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                        }
                    ],
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def pods(cluster: layout.Layout) -> Iterator[dict[str, kubectl.Json]]:
    """A serving pod on each node, by node name, once Running with an address."""
    kube = kubectl.Kube(cluster)
    ns = "e2e-two-nodes"
    kube.run("create", "namespace", ns)
    image = f"csi-vm.local/csi-vm:{lab.project_image_tag(cluster)}"
    names = {node: f"on-{node}" for node in NODES}
    try:
        kube.apply(*(_pod(names[node], node, image) for node in NODES), namespace=ns)

        def running() -> dict[str, kubectl.Json] | None:
            found = {n: kube.get("pod", names[n], namespace=ns) for n in NODES}
            ok = all(
                p["status"].get("phase") == "Running" and p["status"].get("podIP")
                for p in found.values()
            )
            return found if ok else None

        yield kube.wait_for(
            "a pod Running on each node",
            running,
            timeout=300,
            explain=lambda: kube.describe("-n", ns, "pods"),
        )
    finally:
        kube.run("delete", "namespace", ns, "--wait=true", "--timeout=300s", check=False)


def _exec(kube: kubectl.Kube, pod: kubectl.Json, *argv: str) -> str:
    meta = pod["metadata"]
    return kube.run("-n", meta["namespace"], "exec", meta["name"], "--", *argv, timeout=60).stdout


def test_a_pod_pinned_to_each_node_runs_there(pods: dict[str, kubectl.Json]) -> None:
    for node, pod in pods.items():
        assert pod["spec"]["nodeName"] == node
    for node, cidr in ((layout.NODE, layout.POD_CIDR), (layout.NODE2, layout.NODE2_POD_CIDR)):
        # Each node's CNI configuration hands out its own pod CIDR.
        assert ipaddress.ip_address(pods[node]["status"]["podIP"]) in ipaddress.ip_network(cidr)


@pytest.mark.parametrize(
    ("client", "server"), [(layout.NODE2, layout.NODE), (layout.NODE, layout.NODE2)]
)
def test_pods_reach_each_other_across_nodes(
    cluster: layout.Layout, pods: dict[str, kubectl.Json], client: str, server: str
) -> None:
    kube = kubectl.Kube(cluster)
    url = f"http://{pods[server]['status']['podIP']}:{PORT}/"
    answer = _exec(kube, pods[client], "python3", "-c", _FETCH, url).strip()
    assert answer == pods[server]["metadata"]["name"]


def test_a_pod_on_node_2_reaches_the_api_server(
    cluster: layout.Layout, pods: dict[str, kubectl.Json]
) -> None:
    kube = kubectl.Kube(cluster)
    seen = json.loads(_exec(kube, pods[layout.NODE2], "python3", "-c", _API))
    # Through the service address, which node 2's kube-proxy translates.
    assert seen["host"] == layout.API_SERVICE_IP
    server = json.loads(kube.run("version", "-o", "json").stdout)["serverVersion"]
    assert seen["version"]["gitVersion"] == server["gitVersion"]


def test_host_network_pods_see_their_own_node(cluster: layout.Layout) -> None:
    """A host-network pod on node 2 has node 2's hostname and addresses, not the machine's."""
    kube = kubectl.Kube(cluster)
    ns = "e2e-two-nodes-host"
    kube.run("create", "namespace", ns)
    image = f"csi-vm.local/csi-vm:{lab.project_image_tag(cluster)}"
    try:
        kube.apply(_pod("host", layout.NODE2, image, host_network=True), namespace=ns)

        def running() -> kubectl.Json | None:
            pod = kube.get("pod", "host", namespace=ns)
            return pod if pod["status"].get("phase") == "Running" else None

        pod = kube.wait_for(
            "a host-network pod on node 2",
            running,
            timeout=300,
            explain=lambda: kube.describe("-n", ns, "pods"),
        )
        assert pod["status"]["podIP"] == layout.NODE2_IP
        assert _exec(kube, pod, "hostname").strip() == layout.NODE2
    finally:
        kube.run("delete", "namespace", ns, "--wait=true", "--timeout=300s", check=False)


def test_the_local_drivers_serve_both_nodes(cluster: layout.Layout) -> None:
    kube = kubectl.Kube(cluster)
    wanted = {c.driver for c in addons.ALL_DRIVERS}
    for node in NODES:
        drivers = {d["name"] for d in kube.get("csinode", node)["spec"]["drivers"] or []}
        assert wanted <= drivers, f"{node}: {drivers}"


def test_the_charts_node_daemonset_is_ready_on_each_node(chart: kubectl.Kube) -> None:
    selector = "app.kubernetes.io/component=node,app.kubernetes.io/instance=csi-vm"

    def ready_nodes() -> set[str] | None:
        found = set()
        for pod in chart.items("pods", namespace="csi-vm", selector=selector):
            statuses = pod["status"].get("containerStatuses") or []
            if statuses and all(s.get("ready") for s in statuses):
                found.add(pod["spec"]["nodeName"])
        return found if found == set(NODES) else None

    chart.wait_for(
        "a Ready node pod of the chart on each node",
        ready_nodes,
        timeout=300,
        explain=lambda: chart.describe("-n", "csi-vm", "pods", "-l", selector),
    )
