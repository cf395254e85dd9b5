"""A change of a launcher Pod on this node: the pass its VM would get from a CsiVM event.

The guest starts once its launcher Pod runs and has tested the node's KVM
(`csi_vm.agent.launched`), and the Pod's changes are not the CsiVM's: without
following the Pods, the start would wait for the next list of VMs (up to the
agent's resync). Only this node's launcher Pods are followed (a label and a
field selector), and a Pod seen again unchanged (every re-list shows it)
leads to nothing.
"""

from __future__ import annotations

import threading

from csi_vm import errors
from csi_vm.agent import state
from csi_vm.crd import kinds, vmpod
from csi_vm.kube import informer, objects

#: the launcher Pods among the Pods of a node
SELECTOR = f"{vmpod.COMPONENT_LABEL}={vmpod.COMPONENT}"


def fields(node: str) -> str:
    """The field selector of the Pods the scheduler put on ``node``."""
    return f"spec.nodeName={node}"


class Handler:
    """Hands the VM of each changed launcher Pod to ``reconcile`` (the CsiVM step)."""

    def __init__(self, agent: state.Agent, reconcile: informer.Handler) -> None:
        self._agent = agent
        self._reconcile = reconcile
        self._guard = threading.Lock()
        #: the resourceVersion each Pod was last seen at
        self._seen: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, pod: objects.Json) -> None:
        meta = pod.get("metadata") or {}
        namespace, vm = meta.get("namespace", ""), (meta.get("labels") or {}).get(vmpod.LABEL)
        if not vm or not self._changed(kind, meta):
            return
        try:
            obj = self._agent.objs.get(kinds.VM, vm, namespace=namespace)
        except errors.NotFound:
            return  # the VM is gone: its own DELETED event did what was needed
        self._reconcile("MODIFIED", obj)

    def _changed(self, kind: str, meta: objects.Json) -> bool:
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._guard:
            if kind == "DELETED":
                self._seen.pop(key, None)
                return True
            version = str(meta.get("resourceVersion", ""))
            changed = self._seen.get(key) != version
            self._seen[key] = version
            return changed
