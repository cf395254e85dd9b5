"""The chart's RBAC grants exactly what the code declares it calls.

The controller's rules are in csi_vm.controller.rbac, the node agent's in
csi_vm.agent.rbac; each has its own ClusterRole and service account.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from csi_vm.agent import rbac as agent_rbac
from csi_vm.controller import rbac
from tests.integration.chart import conftest as chart

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Grant = tuple[str, str, str]


def _declared(rules: tuple[rbac.Rule, ...]) -> set[Grant]:
    return {(r.group, r.resource, verb) for r in rules for verb in r.verbs}


def _granted(obj: dict[str, Any]) -> set[Grant]:
    found = set()
    for rule in obj["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    found.add((group, resource, verb))
    return found


def _role(helm: pathlib.Path, kind: str, suffix: str) -> dict[str, Any]:
    objects = chart.render(helm, chart.DEFAULTS)
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix))


@pytest.mark.parametrize(
    ("kind", "suffix", "declared"),
    [
        ("ClusterRole", "-controller", rbac.CONTROLLER),
        ("Role", "-leader-election", rbac.LEADER_ELECTION),
        ("ClusterRole", "-node", agent_rbac.AGENT),
    ],
    ids=["controller", "leader-election", "node-agent"],
)
def test_chart_grants_exactly_what_the_code_calls(
    helm: pathlib.Path, kind: str, suffix: str, declared: tuple[rbac.Rule, ...]
) -> None:
    granted = _granted(_role(helm, kind, suffix))
    want = _declared(declared)
    assert not want - granted, f"the code calls, the chart does not grant: {sorted(want - granted)}"
    assert not granted - want, f"the chart grants, no code calls: {sorted(granted - want)}"


def test_no_wildcards_and_no_cluster_admin(helm: pathlib.Path) -> None:
    for obj in chart.render(helm, chart.DEFAULTS):
        if obj["kind"] in ("ClusterRole", "Role"):
            for rule in obj["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], obj["metadata"]["name"]
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert obj["roleRef"]["name"] not in ("cluster-admin", "admin", "edit")


def test_the_node_agent_is_bound_to_its_own_role_only(helm: pathlib.Path) -> None:
    objects = chart.render(helm, chart.DEFAULTS)
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    assert ds["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    node_sa = ds["spec"]["template"]["spec"]["serviceAccountName"]
    roles = [
        o["roleRef"]["name"]
        for o in objects
        if o["kind"] in ("ClusterRoleBinding", "RoleBinding")
        for s in o["subjects"]
        if s["name"] == node_sa
    ]
    assert len(roles) == 1 and roles[0].endswith("-node")
    launcher = next(
        c for c in ds["spec"]["template"]["spec"]["containers"] if c["name"] == "launcher"
    )
    assert launcher["command"][:3] == ["csi-vm", "node-agent", "run"]


def _plurals(*, namespaced_only: bool = False) -> set[str]:
    return {
        crd["spec"]["names"]["plural"]
        for crd in chart.crds()
        if not namespaced_only or crd["spec"]["scope"] == "Namespaced"
    }


def _aggregates_to(role: dict[str, Any]) -> set[str]:
    prefix = "rbac.authorization.k8s.io/aggregate-to-"
    labels = role["metadata"]["labels"]
    return {key.removeprefix(prefix) for key, value in labels.items() if key.startswith(prefix)}


def test_the_view_role_reads_every_csi_vm_resource(helm: pathlib.Path) -> None:
    role = _role(helm, "ClusterRole", "-view")
    # Aggregation needs the label's value to be the string "true".
    assert all(role["metadata"]["labels"][f"rbac.authorization.k8s.io/aggregate-to-{r}"] == "true"
               for r in ("view", "edit", "admin"))  # fmt: skip
    assert _aggregates_to(role) == {"view", "edit", "admin"}
    resources = _plurals() | {f"{p}/status" for p in _plurals()}
    want = {("csi-vm.io", r, verb) for r in resources for verb in ("get", "list", "watch")}
    assert _granted(role) == want


def test_the_edit_role_writes_the_user_facing_kinds_and_never_status(helm: pathlib.Path) -> None:
    role = _role(helm, "ClusterRole", "-edit")
    assert _aggregates_to(role) == {"edit", "admin"}
    # The cluster-scoped reports are the controller's; their spec.verify makes
    # probe volumes, which a namespace's editor must not be able to ask for.
    user_facing = _plurals(namespaced_only=True)
    assert "storagecapabilityreports" not in user_facing
    verbs = ("create", "update", "patch", "delete")
    assert _granted(role) == {("csi-vm.io", r, verb) for r in user_facing for verb in verbs}


def test_rbac_create_false_renders_no_role_at_all(helm: pathlib.Path) -> None:
    objects = chart.render(helm, chart.DEFAULTS, "--set", "rbac.create=false")
    rbac_kinds = {"ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"}
    assert not [o["metadata"]["name"] for o in objects if o["kind"] in rbac_kinds]
