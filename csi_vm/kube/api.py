"""The one door from csi-vm to the Kubernetes API.

Every request is a method of the kubernetes client sent through the door:
`Api.request` for a whole JSON answer, `Api.open` for a watch's stream. The
door sets the timeout, retries transient failures through `csi_vm.csi.retry`
(the one retry loop of csi-vm, which logs each attempt), and maps client and
transport errors into the csi-vm tree with ``raise ... from``. Callers get
the frozen models of `csi_vm.kube.models`, or JSON through
`csi_vm.kube.objects`, never kubernetes client objects.
"""

from __future__ import annotations

import functools
import json
import logging
import pathlib
import time
from collections.abc import Callable
from typing import Any

import urllib3.exceptions
from kubernetes import client as k8s

from csi_vm import errors
from csi_vm.csi import retry
from csi_vm.kube import convert, kubeconfig, models
from csi_vm.kube import errors as kube_errors

log = logging.getLogger("csi_vm.kube")

SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SNAPSHOT_VERSION = "v1"

#: seconds one request may take; a list of a few hundred objects takes well under one
DEFAULT_TIMEOUT = 10.0
# Objects per list page: kubectl's default --chunk-size, which keeps one answer
# small even with thousands of CSINodes.
_PAGE = 500
_MAX_PAGES = 10_000  # a server that keeps returning continue tokens must not loop us forever

Json = dict[str, Any]
Lister = Callable[..., Any]


def connect(
    *,
    kubeconfig_file: pathlib.Path | None,
    context: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    policy: retry.RetryPolicy | None = None,
) -> Api:
    """An `Api` for the cluster named by the kubeconfig (or the pod's service account)."""
    cfg = kubeconfig.load(kubeconfig=kubeconfig_file, context=context)
    return Api(k8s.ApiClient(cfg), server=str(cfg.host), timeout=timeout, policy=policy)


class Api:
    """Read access to the cluster's storage objects."""

    def __init__(
        self,
        api_client: Any,
        *,
        server: str,
        timeout: float = DEFAULT_TIMEOUT,
        policy: retry.RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.server = server
        self._client = api_client
        self._timeout = timeout
        self._policy = policy or retry.RetryPolicy()
        self._sleep = sleep
        self._storage = k8s.StorageV1Api(api_client)
        self._custom = k8s.CustomObjectsApi(api_client)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Api({self.server!r})"

    def csi_drivers(self) -> list[models.CSIDriverInfo]:
        items = self._list("csidrivers.storage.k8s.io", self._storage.list_csi_driver)
        return [convert.csi_driver(item) for item in items]

    def storage_classes(self) -> list[models.StorageClassInfo]:
        items = self._list("storageclasses.storage.k8s.io", self._storage.list_storage_class)
        return [convert.storage_class(item) for item in items]

    def csi_nodes(self) -> list[models.CSINodeInfo]:
        items = self._list("csinodes.storage.k8s.io", self._storage.list_csi_node)
        return [convert.csi_node(item) for item in items]

    def snapshot_classes(self) -> list[models.VolumeSnapshotClassInfo]:
        """VolumeSnapshotClasses; none when the snapshot CRDs are not installed."""
        lister = functools.partial(
            self._custom.list_cluster_custom_object,
            SNAPSHOT_GROUP,
            SNAPSHOT_VERSION,
            "volumesnapshotclasses",
        )
        try:
            items = self._list(f"volumesnapshotclasses.{SNAPSHOT_GROUP}", lister)
        except errors.NotFound:
            # Snapshots are an add-on (CRDs plus the snapshot controller); a
            # cluster without them simply offers no CSI snapshots.
            log.info("%s serves no %s/%s API", self.server, SNAPSHOT_GROUP, SNAPSHOT_VERSION)
            return []
        return [convert.snapshot_class(item) for item in items]

    @property
    def api_client(self) -> Any:
        """The client's connection, for `csi_vm.kube.objects` (same package, same door)."""
        return self._client

    def request(self, verb: str, what: str, call: Lister, *, retry: bool = True) -> Json:
        """One request through the door: timeout, retries and error mapping.

        ``call`` is a method of the client (`csi_vm.kube.methods`) with its
        arguments bound; the door adds how to send it. ``retry=False`` for writes that
        must not repeat blindly (guarded by resourceVersion: the caller
        re-reads instead).
        """
        if not retry:
            return self._once(verb, what, call)
        return self._request(verb, what, call)

    def list_all(self, what: str, lister: Lister) -> tuple[list[Json], str]:
        """All objects a list method returns, page by page, and the list's resourceVersion."""
        items: list[Json] = []
        token: str | None = None
        version = ""
        for _ in range(_MAX_PAGES):
            page = self._request(
                "list", what, functools.partial(lister, limit=_PAGE, _continue=token)
            )
            items.extend(page.get("items") or ())
            meta = page.get("metadata") or {}
            # Every page of one list is served from the first page's snapshot.
            version = version or str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or None
            if token is None:
                return items, version
        raise errors.OperationFailed(f"list {what} on {self.server}: more than {_MAX_PAGES} pages")

    def open(self, verb: str, what: str, call: Lister, *, read_timeout: float) -> Any:
        """A streamed answer (a watch), opened through the door; the caller reads it.

        ``read_timeout`` bounds each wait for more data; a watch sets it a
        little above its own timeoutSeconds, so only a dead connection hits it.
        """
        return retry.call(
            lambda: self._send(verb, what, call, read_timeout=read_timeout),
            what=f"{verb} {what} on {self.server}",
            policy=self._policy,
            sleep=self._sleep,
        )

    # -- the one door ---------------------------------------------------------

    def _list(self, what: str, lister: Lister) -> list[Json]:
        return self.list_all(what, lister)[0]

    def _request(self, verb: str, what: str, call: Lister) -> Json:
        return retry.call(
            lambda: self._once(verb, what, call),
            what=f"{verb} {what} on {self.server}",
            policy=self._policy,
            sleep=self._sleep,
        )

    def _once(self, verb: str, what: str, call: Lister) -> Json:
        response = self._send(verb, what, call, read_timeout=self._timeout)
        try:
            body = response.data
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise kube_errors.from_transport(err, verb=verb, what=what, server=self.server) from err
        return _decode(body, verb=verb, what=what, server=self.server)

    def _send(self, verb: str, what: str, call: Lister, *, read_timeout: float) -> Any:
        log.debug("%s %s on %s", verb, what, self.server)
        try:
            # Raw JSON rather than the client's generated classes: one decoding
            # path for built-in kinds and CRDs alike. The timeout is a
            # (connect, read) pair: clients before 37 ignore a lone float.
            return call(_preload_content=False, _request_timeout=(self._timeout, read_timeout))
        except k8s.ApiException as err:
            raise kube_errors.from_api_exception(
                err, verb=verb, what=what, server=self.server
            ) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise kube_errors.from_transport(err, verb=verb, what=what, server=self.server) from err


def _decode(body: bytes, *, verb: str, what: str, server: str) -> Json:
    try:
        data = json.loads(body)
    except ValueError as err:
        raise errors.OperationFailed(f"{verb} {what} on {server}: the answer is not JSON") from err
    if not isinstance(data, dict):
        raise errors.OperationFailed(f"{verb} {what} on {server}: the answer is not an object")
    return data
