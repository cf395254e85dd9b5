"""Why a VM disk's claim is not bound, said in words that name what to fix.

Two causes the claim itself never reports (the cluster tells them only in
the claim's Events, if at all):

- The claim's StorageClass does not exist. The API server accepts a claim
  of any class name (the class may come later), and a claim's class cannot
  change afterwards: after a misspelt class is corrected in the VM's spec,
  the claim must be deleted so that the controller makes it anew.
- The class has its provisioner read a Secret
  (``csi.storage.k8s.io/provisioner-secret-name`` and ``-namespace``).
  The external-provisioner reads it before every CreateVolume and leaves
  the claim Pending while it is missing or unreadable. The controller
  reads no Secret (docs/security.md): it names the one the class points
  at, so the VM's status says where to look.
"""

from __future__ import annotations

import dataclasses
import re

from csi_vm import errors
from csi_vm.crd import kinds
from csi_vm.kube import objects

Json = objects.Json

#: The StorageClass parameters the external-provisioner reads the Secret of
#: CreateVolume from (its documented "secret" parameters).
NAME_PARAMETER = "csi.storage.k8s.io/provisioner-secret-name"
NAMESPACE_PARAMETER = "csi.storage.k8s.io/provisioner-secret-namespace"
# Set by the scheduler on a WaitForFirstConsumer claim once a Pod that uses
# it has a node: from then on the claim is the provisioner's.
_SELECTED_NODE = "volume.kubernetes.io/selected-node"
# The templates the external-provisioner fills in those parameters from the claim.
_TEMPLATE = re.compile(r"\$\{pvc\.(name|namespace|annotations\['([^']*)'\])\}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Why:
    """A disk's claim is not bound, and this is what to fix."""

    #: the condition's reason, CamelCase
    reason: str
    message: str
    #: the claim cannot bind as things stand: worth an Event, not only a condition
    stuck: bool = False


def waiting(objs: objects.Objects, pvc: Json, *, field: str) -> Why | None:
    """What holds up ``pvc`` (not Bound) that the VM's status should name; None if nothing known.

    ``field``: where the VM's spec names the claim's class; "" for a claim
    the user named, whose class is its own.
    """
    claim = str(pvc["metadata"]["name"])
    storage_class = str((pvc.get("spec") or {}).get("storageClassName") or "")
    if not storage_class:
        return None
    try:
        sc = objs.get(kinds.STORAGE_CLASS, storage_class)
    except errors.NotFound:
        message = f"StorageClass {storage_class} does not exist"
        if field:
            message += (
                f" ({field}): claim {claim} waits for it; create the class, "
                f"or name an existing one and delete the claim {claim}"
            )
        else:
            message += f": claim {claim} waits for it"
        return Why(reason="StorageClassNotFound", message=message, stuck=True)
    secret = provisioner_secret(sc, pvc)
    if not secret or not _provisioning(sc, pvc):
        return None
    message = (
        f"claim {claim} is not provisioned yet: StorageClass {storage_class} has its "
        f"provisioner read Secret {secret} ({NAME_PARAMETER}), and no volume is made while "
        f"that Secret is missing or unreadable (kubectl describe pvc {claim})"
    )
    return Why(reason="ProvisionerSecret", message=message)


def provisioner_secret(sc: Json, pvc: Json) -> str:
    """``namespace/name`` of the Secret ``sc`` has the provisioner read for ``pvc``; "" if none."""
    params = sc.get("parameters") or {}
    name = params.get(NAME_PARAMETER)
    if not name:
        return ""
    namespace = _fill(str(params.get(NAMESPACE_PARAMETER) or ""), pvc)
    name = _fill(str(name), pvc)
    return f"{namespace}/{name}" if namespace else name


def _provisioning(sc: Json, pvc: Json) -> bool:
    """Whether the provisioner has been asked for the claim's volume (not waiting for a Pod)."""
    if sc.get("volumeBindingMode") != "WaitForFirstConsumer":
        return True
    return bool(((pvc.get("metadata") or {}).get("annotations") or {}).get(_SELECTED_NODE))


def _fill(template: str, pvc: Json) -> str:
    meta = pvc.get("metadata") or {}

    def value(match: re.Match[str]) -> str:
        field = match.group(1)
        if field in ("name", "namespace"):
            return str(meta.get(field) or "")
        return str((meta.get("annotations") or {}).get(match.group(2)) or "")

    return _TEMPLATE.sub(value, template)
