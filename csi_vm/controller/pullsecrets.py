"""The chart's imagePullSecrets on every Pod and Job the controller makes.

The controller runs the chart's images in Pods of its own: launcher Pods
(the libvirt image), VM holder and verification Pods, host-copy Jobs and a
migration's Pods (the csi-vm image). A registry that needs credentials for
the chart's own Pods needs them for these too, so they are added where the
objects are created, whatever made them. A Pod takes pull secrets from its
own namespace only: each name must exist as a Secret in the namespaces of
the VMs as well as in the release's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from csi_vm.crd import kinds
from csi_vm.kube import api as kube_api
from csi_vm.kube import objects

Json = objects.Json


def added(body: Json, secrets: Sequence[str]) -> Json:
    """``body`` (a Pod or a Job) with ``secrets`` among its Pod's imagePullSecrets."""
    made = copy.deepcopy(body)
    spec = made.setdefault("spec", {})
    if made.get("kind") == "Job":
        spec = spec.setdefault("template", {}).setdefault("spec", {})
    present = spec.setdefault("imagePullSecrets", [])
    for name in secrets:
        if {"name": name} not in present:
            present.append({"name": name})
    return made


class Objects(objects.Objects):
    """`objects.Objects` whose new Pods and Jobs pull with ``secrets``."""

    def __init__(self, api: kube_api.Api, *, secrets: Sequence[str]) -> None:
        super().__init__(api)
        self.secrets = tuple(secrets)

    def create(self, res: objects.Resource, body: Json, *, namespace: str = "") -> Json:
        if self.secrets and res in (kinds.POD, kinds.JOB):
            body = added(body, self.secrets)
        return super().create(res, body, namespace=namespace)
