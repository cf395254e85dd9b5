"""Any Kubernetes object by resource: get, list, create, patch, delete, watch.

The controller works on its own custom resources, Leases, Events, PVCs,
VolumeSnapshots and Jobs; rather than one generated client class per kind,
this module speaks the REST layout every resource shares
(``/api/v1/...`` for the core group, ``/apis/GROUP/VERSION/...`` otherwise)
through the one door of `csi_vm.kube.api.Api`, so timeouts, retries and error
mapping stay in one place. Objects stay JSON mappings here; callers convert
them into their own frozen models once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

import urllib3.exceptions
from kubernetes import client as k8s

from csi_vm import errors
from csi_vm.kube import api as kube_api
from csi_vm.kube import errors as kube_errors

log = logging.getLogger("csi_vm.kube.objects")

Json = dict[str, Any]
_MERGE_PATCH = "application/merge-patch+json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Resource:
    """A kind of object as the REST API names it."""

    group: str  # "" for the core API
    version: str
    plural: str
    namespaced: bool = True

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        parts.extend(p for p in (name, subresource) if p)
        return "/".join(parts)


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED (ERROR events are raised, never yielded)
    object: Json


class Objects:
    """Generic object access over one `Api` connection."""

    def __init__(self, api: kube_api.Api, *, timeout: float = kube_api.DEFAULT_TIMEOUT) -> None:
        self._api = api
        self._timeout = timeout

    @property
    def server(self) -> str:
        return self._api.server

    def get(self, res: Resource, name: str, *, namespace: str = "") -> Json:
        return self._call("get", res, "GET", res.path(namespace, name))

    def list(self, res: Resource, *, namespace: str = "") -> tuple[list[Json], str]:
        """The objects and the list's resourceVersion (where a watch starts)."""
        page = self._call("list", res, "GET", res.path(namespace))
        version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        return list(page.get("items") or ()), version

    def create(self, res: Resource, body: Json, *, namespace: str = "") -> Json:
        return self._call("create", res, "POST", res.path(namespace), body=body)

    def replace(self, res: Resource, body: Json, *, namespace: str = "") -> Json:
        """PUT with the body's resourceVersion: a stale write fails with `errors.Busy`."""
        name = str(body["metadata"]["name"])
        return self._call("update", res, "PUT", res.path(namespace, name), body=body, retry=False)

    def patch(
        self, res: Resource, name: str, patch: Json, *, namespace: str = "", subresource: str = ""
    ) -> Json:
        """A JSON merge patch (RFC 7386) of the object or of a subresource such as status."""
        path = res.path(namespace, name, subresource)
        return self._call("patch", res, "PATCH", path, body=patch, content_type=_MERGE_PATCH)

    def delete(self, res: Resource, name: str, *, namespace: str = "") -> None:
        # Already gone is what delete wants.
        with contextlib.suppress(errors.NotFound):
            self._call("delete", res, "DELETE", res.path(namespace, name))

    def watch(
        self, res: Resource, *, namespace: str = "", since: str, timeout: int = 60
    ) -> Iterator[WatchEvent]:
        """Changes after resourceVersion ``since`` until the server ends the stream.

        A 410 Gone (history compacted) surfaces as `errors.Rejected`: list again.
        """
        query = {"watch": "true", "resourceVersion": since, "timeoutSeconds": str(timeout)}
        response = self._send("GET", res.path(namespace), query=query, stream_timeout=timeout + 5)
        if response.status >= 400:
            raise self._error(response, verb="watch", res=res)
        try:
            yield from _events(response.response, res=res, server=self.server)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise kube_errors.from_transport(
                err, verb="watch", what=res.qualified, server=self.server
            ) from err
        finally:
            response.response.release_conn()

    # -- through the one door ------------------------------------------------

    def _call(
        self,
        verb: str,
        res: Resource,
        method: str,
        path: str,
        *,
        body: Json | None = None,
        content_type: str = "application/json",
        retry: bool = True,
    ) -> Json:
        def call(**_: Any) -> Any:
            response = self._send(method, path, body=body, content_type=content_type)
            data = response.read()
            if response.status >= 400:
                err = k8s.ApiException(status=response.status, reason=response.reason)
                err.body = data.decode(errors="replace") if data else ""
                raise err
            return _Raw(data)

        return self._api.request(verb, res.qualified, call, retry=retry)

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Json | None = None,
        content_type: str = "application/json",
        stream_timeout: float | None = None,
    ) -> Any:
        client = self._api.api_client
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, payload, post = client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return client.call_api(
            method,
            url,
            header_params=headers,
            body=payload,
            post_params=post,
            _request_timeout=stream_timeout or self._timeout,
        )

    def _error(self, response: Any, *, verb: str, res: Resource) -> errors.CsiVmError:
        data = response.read()
        return kube_errors.from_status(
            status=int(response.status),
            body=data.decode(errors="replace") if data else "",
            verb=verb,
            what=res.qualified,
            server=self.server,
        )


@dataclasses.dataclass(frozen=True)
class _Raw:
    """What `Api` reads an answer from: its body bytes."""

    data: bytes


def _events(stream: Any, *, res: Resource, server: str) -> Iterator[WatchEvent]:
    """Watch events from a stream of JSON lines."""
    buffer = b""
    for chunk in stream.stream(4096, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield _event(json.loads(line), res=res, server=server)
    if buffer.strip():
        yield _event(json.loads(buffer), res=res, server=server)


def _event(data: Json, *, res: Resource, server: str) -> WatchEvent:
    kind, obj = str(data.get("type") or ""), data.get("object") or {}
    if kind == "ERROR":
        raise kube_errors.from_status(
            status=int(obj.get("code") or 500),
            body=json.dumps(obj),
            verb="watch",
            what=res.qualified,
            server=server,
        )
    return WatchEvent(kind, obj)
