"""An RBAC rule: one (API group, resource) and the verbs called on it.

The controller and the node agent each list every call they make as such
rules (`csi_vm.controller.rbac`, `csi_vm.agent.rbac`); the chart's roles are
checked against those lists.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rule:
    group: str
    resource: str
    verbs: frozenset[str]


def rule(group: str, resource: str, *verbs: str) -> Rule:
    return Rule(group=group, resource=resource, verbs=frozenset(verbs))
