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
    objects = chart.render(helm, None)
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
    for obj in chart.render(helm, None):
        if obj["kind"] in ("ClusterRole", "Role"):
            for rule in obj["rules"]:
                for field in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[field], obj["metadata"]["name"]
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert obj["roleRef"]["name"] not in ("cluster-admin", "admin", "edit")


def test_the_node_agent_is_bound_to_its_own_role_only(helm: pathlib.Path) -> None:
    objects = chart.render(helm, None)
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
