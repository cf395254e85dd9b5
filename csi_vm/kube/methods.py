"""Which method of the kubernetes client serves a verb on a resource.

Every group under ``/apis`` (csi-vm's CRDs, snapshots, Leases, Jobs,
StorageClasses) goes through `CustomObjectsApi`, whose methods take group,
version and plural and send a body exactly as given. The core group's
``/api/v1`` paths are beyond it; `CoreV1Api` serves them, with method names
built from the kind's snake_case name by the generator's one scheme
(``read_namespaced_pod``, ``list_persistent_volume_claim_for_all_namespaces``,
``read_node``). `CORE` lists the core kinds csi-vm touches.

Why not a typed class per group: from client 37 on, their create and replace
methods rebuild a dict body into the client's model before sending it, and
that rewrites what the model holds differently: a Lease's MicroTime
"10:00:00.000000Z" leaves as "10:00:00+00:00", which the API server refuses.
Why not ``kubernetes.dynamic``: it needs discovery round trips (without the
door's timeout) and keeps a discovery cache on disk.

Each function returns the method with the object's path arguments bound;
`csi_vm.kube.objects` adds the body and sends it through the door.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes import client as k8s

Method = Callable[..., Any]


class Resource(Protocol):
    """What a method lookup needs of `csi_vm.kube.objects.Resource` (which imports this module)."""

    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def plural(self) -> str: ...
    @property
    def namespaced(self) -> bool: ...


#: Core kinds by plural (version v1): their names as CoreV1Api's methods spell them.
CORE: dict[str, str] = {
    "namespaces": "namespace",
    "nodes": "node",
    "pods": "pod",
    "events": "event",
    "persistentvolumes": "persistent_volume",
    "persistentvolumeclaims": "persistent_volume_claim",
}


class Methods:
    """The client's methods for each verb, over one connection."""

    def __init__(self, api_client: Any) -> None:
        self._core_api = k8s.CoreV1Api(api_client)
        self._custom_api = k8s.CustomObjectsApi(api_client)

    def read(self, res: Resource, name: str, *, namespace: str) -> Method:
        return self._object(res, name, core="read", custom="get", namespace=namespace)

    def replace(self, res: Resource, name: str, *, namespace: str) -> Method:
        return self._object(res, name, core="replace", custom="replace", namespace=namespace)

    def delete(self, res: Resource, name: str, *, namespace: str) -> Method:
        return self._object(res, name, core="delete", custom="delete", namespace=namespace)

    def patch(self, res: Resource, name: str, *, namespace: str, subresource: str = "") -> Method:
        if subresource not in ("", "status"):
            raise ValueError(f"no client method patches {res.plural}/{subresource}")
        suffix = f"_{subresource}" if subresource else ""
        return self._object(
            res, name, core="patch", custom="patch", namespace=namespace, suffix=suffix
        )

    def create(self, res: Resource, *, namespace: str) -> Method:
        if res.group:
            return self._custom("create", res, namespace=namespace)
        return self._core("create", res, namespace=namespace)

    def list(self, res: Resource, *, namespace: str) -> Method:
        """The list method, which is also the watch method (the client adds watch=true)."""
        if res.group:
            # Without a namespace, the cluster-wide path lists every namespace.
            return self._custom("list", res, namespace=namespace)
        if res.namespaced and not namespace:
            every: Method = getattr(self._core_api, f"list_{_core(res)}_for_all_namespaces")
            return every
        return self._core("list", res, namespace=namespace)

    # -- method names ---------------------------------------------------------

    def _object(
        self, res: Resource, name: str, *, core: str, custom: str, namespace: str, suffix: str = ""
    ) -> Method:
        """The method for one named object: ``core`` and ``custom`` are its verb in each API."""
        if res.group:
            method = self._custom(custom, res, namespace=namespace, suffix=suffix)
        else:
            method = self._core(core, res, namespace=namespace, suffix=suffix)
        return functools.partial(method, name=name)

    def _core(self, verb: str, res: Resource, *, namespace: str, suffix: str = "") -> Method:
        if res.namespaced:
            method = getattr(self._core_api, f"{verb}_namespaced_{_core(res)}{suffix}")
            return functools.partial(method, namespace=namespace)
        cluster: Method = getattr(self._core_api, f"{verb}_{_core(res)}{suffix}")
        return cluster

    def _custom(self, verb: str, res: Resource, *, namespace: str, suffix: str = "") -> Method:
        path = {"group": res.group, "version": res.version, "plural": res.plural}
        if res.namespaced and namespace:
            method = getattr(self._custom_api, f"{verb}_namespaced_custom_object{suffix}")
            return functools.partial(method, namespace=namespace, **path)
        cluster = getattr(self._custom_api, f"{verb}_cluster_custom_object{suffix}")
        return functools.partial(cluster, **path)


def _core(res: Resource) -> str:
    kind = CORE.get(res.plural)
    if kind is None or res.version != "v1":
        raise ValueError(f"no CoreV1Api method is known for {res.version} {res.plural}")
    return kind
