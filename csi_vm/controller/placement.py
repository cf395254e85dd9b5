"""Where a host-copy Job runs: on the node that holds its source volume.

A ReadWriteOnce volume attaches to one node at a time. A VM's disks are
published on the VM's node by its holder Pod (`storage.vm_holder`), so a
copy Job that the scheduler puts on another node waits forever on a
Multi-Attach error. The controller knows that node without asking: it is
the VM's (`csi_vm.crd.rules.assigned_node`), and callers pass it in.

A source no VM holds (a disk a snapshot copied into) may still be tied to
nodes by its PersistentVolume's nodeAffinity, as local volumes are; then the
Job takes that affinity as its own, so ``kubectl get job -o yaml`` shows
where it must run and why it waits when no such node is ready.
"""

from __future__ import annotations

import dataclasses

from csi_vm import errors
from csi_vm.crd import kinds
from csi_vm.kube import objects

Json = objects.Json


@dataclasses.dataclass(frozen=True, kw_only=True)
class Placement:
    """Where a Pod must run: a required NodeSelector, and whether taints may stop it."""

    selector: Json
    #: The node is a VM's: the Pod goes there whatever its taints, as the VM's
    #: holder Pod does, since the volume can be reached nowhere else.
    any_taint: bool = False

    def pod_fields(self) -> Json:
        """The fields of a Pod spec that place it so."""
        fields: Json = {
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": self.selector}
            }
        }
        if self.any_taint:
            fields["tolerations"] = [{"operator": "Exists"}]
        return fields


def on_node(node: str) -> Json:
    """A required node selector for the Node named ``node``.

    By the Node's name (``metadata.name``), not its kubernetes.io/hostname
    label: the two differ on some clouds, and the holder Pod is pinned by
    name too, so both land on the same node.
    """
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    return {"nodeSelectorTerms": [term]}


def of_volume(pv: Json) -> Json | None:
    """The nodes ``pv`` is reachable from (its required nodeAffinity); None for any node."""
    required = (((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")) or {}
    return dict(required) if required.get("nodeSelectorTerms") else None


def of_source(objs: objects.Objects, *, claim: str, namespace: str, node: str) -> Placement | None:
    """Where a Job that reads the claim ``claim`` must run; None where any node will do.

    ``node``: the node that publishes the claim now (its VM's node), "" when
    no VM holds it. A claim not bound yet, or gone, gives None: the Job then
    waits for it like any Pod, and its deadline ends the wait.
    """
    if node:
        return Placement(selector=on_node(node), any_taint=True)
    try:
        pvc = objs.get(kinds.PVC, claim, namespace=namespace)
        volume = (pvc.get("spec") or {}).get("volumeName")
        selector = of_volume(objs.get(kinds.PV, str(volume))) if volume else None
    except errors.NotFound:
        return None
    return Placement(selector=selector) if selector else None
