"""The chart as `helm install` leaves it, judged by the real API server.

Every CRD the chart ships is served; the controller's and the node agent's
pods run, each under its own ServiceAccount and with that account's token
(the API server's SelfSubjectReview names who a token is); the RBAC the
chart grants is what `kubectl auth can-i` gets from the API server for each
account; and the roles aggregated into the cluster's `view` and `edit` let
a plain user read, or make, csi-vm's objects in a namespace bound to them.
"""

from __future__ import annotations

import pathlib
import uuid
from typing import Any

import pytest
import yaml

from tests.integration.cluster import conftest
from tests.support.cluster import addons, kubectl

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"
NS = conftest.RELEASE_NAMESPACE

# Asks the API server who the pod's mounted ServiceAccount token belongs to
# (authentication.k8s.io/v1 SelfSubjectReview), with nothing but the standard
# library, in the pod's own container.
_WHO_AM_I = """
import json, os, ssl, urllib.request
d = "/var/run/secrets/kubernetes.io/serviceaccount"
tls = ssl.create_default_context(cafile=d + "/ca.crt")
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
url = f"https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews"
body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
headers = {"Authorization": "Bearer " + open(d + "/token").read(),
           "Content-Type": "application/json"}
req = urllib.request.Request(url, data=body.encode(), method="POST", headers=headers)
print(json.load(urllib.request.urlopen(req, context=tls))["status"]["userInfo"]["username"])
"""


def _manifest(kube: kubectl.Kube) -> list[Json]:
    """The objects of the installed release, as helm rendered them."""
    out = kube.helm("get", "manifest", conftest.RELEASE, "-n", NS).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _named(manifest: list[Json], kind: str, component: str) -> str:
    found = [
        d["metadata"]["name"]
        for d in manifest
        if d["kind"] == kind
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, (kind, component, found)
    return str(found[0])


def _account(kube: kubectl.Kube, component: str) -> str:
    return _named(_manifest(kube), "ServiceAccount", component)


def _sa_user(name: str) -> str:
    return f"system:serviceaccount:{NS}:{name}"


def _can(kube: kubectl.Kube, user: str, *check: str) -> bool:
    """`kubectl auth can-i CHECK --as USER`: the API server's answer (exit 0 yes, 1 no)."""
    done = kube.run("auth", "can-i", *check, "--as", user, check=False)
    answer = done.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {' '.join(check)}: {done.stderr}"
    return answer == "yes"


def _pods(kube: kubectl.Kube, component: str) -> list[Json]:
    """The release's pods of ``component``, once every one of them runs and is Ready."""
    selector = (
        f"app.kubernetes.io/instance={conftest.RELEASE},app.kubernetes.io/component={component}"
    )

    def ready() -> list[Json] | None:
        pods = [
            p
            for p in kube.items("pods", namespace=NS, selector=selector)
            if not p["metadata"].get("deletionTimestamp")
        ]
        ok = pods and all(
            p["status"].get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions") or ()
            )
            for p in pods
        )
        return pods if ok else None

    # Another test may be rolling the release out again: give it the time.
    return list(
        kube.wait_for(
            f"{component} pods Running and Ready",
            ready,
            timeout=300,
            explain=lambda: kube.run("-n", NS, "get", "pods", "-o", "wide", check=False).stdout,
        )
    )


def test_every_crd_of_the_chart_is_established(chart: kubectl.Kube) -> None:
    crds = sorted((kubectl.chart_dir() / "crds").glob("*.yaml"))
    names = [yaml.safe_load(pathlib.Path(f).read_text())["metadata"]["name"] for f in crds]
    assert len(names) == 6, names
    for name in names:
        conditions = chart.get("crd", name)["status"].get("conditions") or []
        state = {c["type"]: c["status"] for c in conditions}
        assert state.get("Established") == "True", (name, conditions)
        assert state.get("NamesAccepted") == "True", (name, conditions)


def _identities(kube: kubectl.Kube, component: str) -> dict[str, tuple[str, str]] | None:
    """Each Ready pod's (serviceAccountName, who its token is); None if a pod went meanwhile."""
    container = "controller" if component == "controller" else "launcher"
    found = {}
    for pod in _pods(kube, component):
        name = pod["metadata"]["name"]
        asked = kube.run("-n", NS, "exec", name, "-c", container, "--", "python3", "-c",
                         _WHO_AM_I, check=False)  # fmt: skip
        if asked.returncode != 0:  # replaced by a rollout of another test: ask again
            return None
        found[name] = (pod["spec"]["serviceAccountName"], asked.stdout.strip())
    return found


@pytest.mark.parametrize("component", ["controller", "node"])
def test_pods_run_ready_under_the_charts_service_accounts(
    chart: kubectl.Kube, component: str
) -> None:
    account = _account(chart, component)
    workload = "Deployment" if component == "controller" else "DaemonSet"
    spec = chart.get(workload.lower(), _named(_manifest(chart), workload, component), namespace=NS)
    assert spec["spec"]["template"]["spec"]["serviceAccountName"] == account
    found = chart.wait_for(
        f"{component} pods that answer", lambda: _identities(chart, component), timeout=300
    )
    assert found
    for pod, (named, token) in found.items():
        assert (named, token) == (account, _sa_user(account)), pod


def test_controller_writes_reports_only_its_rbac_allows(chart: kubectl.Kube) -> None:
    """A report for csi-vm-full exists: only the controller's account may make one."""
    name = addons.FULL.storage_class
    status = chart.wait_for(
        f"StorageCapabilityReport {name} with a plan",
        lambda: ((chart.maybe("storagecapabilityreport", name) or {}).get("status") or {}).get(
            "plan"
        ),
        timeout=120,
    )
    assert set(status) >= {"vm_snapshot", "vm_clone"}, status
    controller = _sa_user(_account(chart, "controller"))
    node = _sa_user(_account(chart, "node"))
    assert _can(chart, controller, "create", "storagecapabilityreports.csi-vm.io")
    assert _can(chart, controller, "patch", "storagecapabilityreports.csi-vm.io",
                "--subresource=status")  # fmt: skip
    assert not _can(chart, node, "create", "storagecapabilityreports.csi-vm.io")


# What each account must and must not be allowed, as the API server decides.
_CONTROLLER_MAY = [
    ("create", "persistentvolumeclaims", "-n", "any-namespace"),
    ("delete", "persistentvolumeclaims", "-n", "any-namespace"),
    ("create", "volumesnapshots.snapshot.storage.k8s.io", "-n", "any-namespace"),
    ("create", "jobs.batch", "-n", "any-namespace"),
    ("create", "pods", "-n", "any-namespace"),
    ("patch", "csivms.csi-vm.io", "--subresource=status", "-n", "any-namespace"),
    ("create", "csivms.csi-vm.io", "-n", "any-namespace"),
    ("watch", "storageclasses.storage.k8s.io"),
    ("get", "nodes"),
    ("update", "leases.coordination.k8s.io", "-n", NS),
]
_CONTROLLER_MUST_NOT = [
    ("delete", "nodes"),
    ("get", "secrets", "-n", "any-namespace"),
    ("list", "secrets", "-A"),
    ("delete", "csivms.csi-vm.io", "-n", "any-namespace"),
    ("update", "leases.coordination.k8s.io", "-n", "any-namespace"),
    ("delete", "persistentvolumes"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("exec", "pods", "--subresource=exec", "-n", "any-namespace"),
]
_NODE_MAY = [
    ("get", "pods", "-n", "any-namespace"),
    ("get", "persistentvolumeclaims", "-n", "any-namespace"),
    ("watch", "csivms.csi-vm.io", "-n", "any-namespace"),
    ("patch", "csivms.csi-vm.io", "--subresource=status", "-n", "any-namespace"),
    ("patch", "csivmmigrations.csi-vm.io", "--subresource=status", "-n", "any-namespace"),
    ("create", "events", "-n", "any-namespace"),
]
_NODE_MUST_NOT = [
    ("create", "persistentvolumeclaims", "-n", "any-namespace"),
    ("delete", "persistentvolumeclaims", "-n", "any-namespace"),
    ("delete", "pods", "-n", "any-namespace"),
    ("create", "pods", "-n", "any-namespace"),
    ("patch", "csivms.csi-vm.io", "-n", "any-namespace"),
    ("create", "csivms.csi-vm.io", "-n", "any-namespace"),
    ("get", "secrets", "-n", "any-namespace"),
    ("update", "leases.coordination.k8s.io", "-n", NS),
    ("delete", "nodes"),
]


def _checks(component: str, allowed: bool, cases: list[tuple[str, ...]]) -> list[Any]:
    def case_id(case: tuple[str, ...]) -> str:
        words = [a.split(".")[0] for a in case if not a.startswith("-") and a != NS]
        return f"{component}-{'may' if allowed else 'not'}-{'-'.join(words)}"

    return [pytest.param(component, allowed, case, id=case_id(case)) for case in cases]


@pytest.mark.parametrize(
    ("component", "allowed", "check"),
    _checks("controller", True, _CONTROLLER_MAY)
    + _checks("controller", False, _CONTROLLER_MUST_NOT)
    + _checks("node", True, _NODE_MAY)
    + _checks("node", False, _NODE_MUST_NOT),
)
def test_service_account_rbac_as_the_api_server_enforces_it(
    chart: kubectl.Kube, component: str, allowed: bool, check: tuple[str, ...]
) -> None:
    user = _sa_user(_account(chart, component))
    assert _can(chart, user, *check) is allowed


def _vm(name: str) -> Json:
    return {
        "apiVersion": API,
        "kind": "CsiVM",
        "metadata": {"name": name},
        "spec": {
            "cpus": 1,
            "memory": "128Mi",
            "disks": [
                {"name": "root", "size": "64Mi", "storageClassName": addons.LITE.storage_class}
            ],
        },
    }


def _bind(kube: kubectl.Kube, namespace: str, *, user: str, role: str) -> None:
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": f"{role}-{user}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": role,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
        namespace=namespace,
    )


def _as_user(
    kube: kubectl.Kube, user: str, namespace: str, *args: str, stdin: str | None = None
) -> Any:
    return kube.run("--as", user, "-n", namespace, *args, stdin=stdin, check=False)


def _eventually_can(kube: kubectl.Kube, user: str, *check: str) -> None:
    # The cluster's aggregation controller fills view and edit from the
    # chart's labelled roles; after a reinstall by another test that takes a moment.
    kube.wait_for(f"{user} may {' '.join(check)}", lambda: _can(kube, user, *check), timeout=120)


def test_view_role_lists_csivms_and_cannot_create_them(chart: kubectl.Kube, namespace: str) -> None:
    kube = chart
    user = f"viewer-{uuid.uuid4().hex[:6]}"
    kube.apply(_vm("seen"), namespace=namespace)
    assert not _can(kube, user, "list", "csivms.csi-vm.io", "-n", namespace)
    _bind(kube, namespace, user=user, role="view")
    _eventually_can(kube, user, "list", "csivms.csi-vm.io", "-n", namespace)

    listed = _as_user(kube, user, namespace, "get", "csivms", "-o", "name")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["csivm.csi-vm.io/seen"]
    assert _can(kube, user, "get", "csivmsnapshots.csi-vm.io", "-n", namespace)
    # Only in the namespace the binding is in: reports are cluster-wide, and
    # a namespace's binding reaches nothing outside it.
    assert not _can(kube, user, "get", "storagecapabilityreports.csi-vm.io")
    assert not _can(kube, user, "list", "csivms.csi-vm.io", "-n", NS)

    for check in (("create", "csivms.csi-vm.io"), ("delete", "csivms.csi-vm.io"),
                  ("create", "csivmsnapshots.csi-vm.io")):  # fmt: skip
        assert not _can(kube, user, *check, "-n", namespace), check
    made = _as_user(kube, user, namespace, "apply", "-f", "-", stdin=yaml.safe_dump(_vm("mine")))
    assert made.returncode != 0
    assert "forbidden" in made.stderr.lower(), made.stderr
    assert not kube.maybe("csivm", "mine", namespace=namespace)


def test_edit_role_creates_csivms_but_not_their_status(chart: kubectl.Kube, namespace: str) -> None:
    kube = chart
    user = f"editor-{uuid.uuid4().hex[:6]}"
    assert not _can(kube, user, "create", "csivms.csi-vm.io", "-n", namespace)
    _bind(kube, namespace, user=user, role="edit")
    _eventually_can(kube, user, "create", "csivms.csi-vm.io", "-n", namespace)

    made = _as_user(kube, user, namespace, "apply", "-f", "-", stdin=yaml.safe_dump(_vm("mine")))
    assert made.returncode == 0, made.stderr
    assert kube.get("csivm", "mine", namespace=namespace)["spec"]["cpus"] == 1
    for kind in ("csivmsnapshots", "csivmrestores", "csivmclones", "csivmmigrations"):
        assert _can(kube, user, "create", f"{kind}.csi-vm.io", "-n", namespace), kind
    # Status is the controller's and the node agent's: a user who could write
    # it could mark a copy Ready that never finished.
    assert not _can(kube, user, "patch", "csivms.csi-vm.io", "--subresource=status",
                    "-n", namespace)  # fmt: skip
    patched = _as_user(
        kube, user, namespace, "patch", "csivm", "mine", "--subresource=status",
        "--type=merge", "-p", '{"status":{"phase":"Running"}}',
    )  # fmt: skip
    assert patched.returncode != 0 and "forbidden" in patched.stderr.lower(), patched.stderr
    assert not _can(kube, user, "patch", "csivmsnapshots.csi-vm.io", "--subresource=status",
                    "-n", namespace)  # fmt: skip


def test_helm_test_probes_the_nodes_driver(chart: kubectl.Kube) -> None:
    # The test Pod mounts the driver's node socket read-only and reads its
    # declarations, on a node where the node pods run.
    _pods(chart, "node")
    done = chart.helm("test", conftest.RELEASE, "-n", NS, "--logs", "--timeout", "300s")
    assert "Phase:          Succeeded" in done.stdout or "Phase: Succeeded" in done.stdout, (
        done.stdout
    )
    driver = yaml.safe_load((kubectl.chart_dir() / conftest.VALUES).read_text())["node"]
    assert driver["csiDriverName"] in done.stdout, done.stdout


def test_install_without_a_driver_name_is_refused_and_leaves_nothing(
    chart: kubectl.Kube, namespace: str
) -> None:
    release = f"nodriver-{uuid.uuid4().hex[:6]}"
    done = chart.helm(
        "install", release, str(kubectl.chart_dir()), "-n", namespace, "--skip-crds", check=False
    )
    assert done.returncode != 0
    assert "node.csiDriverName is required" in done.stderr, done.stderr
    # helm 4 lists releases in every status, failed ones too.
    listed = chart.helm("list", "-q", "-n", namespace).stdout.split()
    assert release not in listed
    assert chart.items("pods,daemonsets,serviceaccounts", namespace=namespace, selector=(
        f"app.kubernetes.io/instance={release}")) == []  # fmt: skip
