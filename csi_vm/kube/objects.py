"""Any Kubernetes object by resource: get, list, create, replace, patch, delete, watch.

The controller works on its own custom resources, Leases, Events, PVCs,
VolumeSnapshots and Jobs. Each verb is the kubernetes client's own method
for that resource (`csi_vm.kube.methods`: CustomObjectsApi for CRDs, the
typed API of each built-in kind), sent through the one door of
`csi_vm.kube.api.Api`, so timeouts, retries and error mapping stay in one
place; watches follow ``kubernetes.watch.Watch``. Objects stay JSON mappings
here; callers convert them into their own frozen models once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import urllib3.exceptions
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from csi_vm import errors
from csi_vm.kube import api as kube_api
from csi_vm.kube import errors as kube_errors
from csi_vm.kube import methods

log = logging.getLogger("csi_vm.kube.objects")

Json = dict[str, Any]
_MERGE_PATCH = "application/merge-patch+json"
#: The event type of a bookmark: how far a watch got, with no object change.
BOOKMARK = "BOOKMARK"
# Seconds a watch's connection may stay silent beyond the timeoutSeconds it
# asked for, before the connection counts as dead.
_WATCH_GRACE = 5
# The client's Watch carries no annotations; a typed name keeps mypy --strict
# on this module without blanket ignores.
_Watch: Callable[..., Any] = k8s_watch.Watch


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


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK (ERROR events are raised, never yielded)
    object: Json

    @property
    def version(self) -> str:
        """The resourceVersion this event brings the watch to."""
        return str((self.object.get("metadata") or {}).get("resourceVersion") or "")


class Objects:
    """Generic object access over one `Api` connection."""

    def __init__(self, api: kube_api.Api) -> None:
        self._api = api
        self._methods = methods.Methods(api.api_client)

    @property
    def server(self) -> str:
        return self._api.server

    def get(self, res: Resource, name: str, *, namespace: str = "") -> Json:
        call = self._methods.read(res, name, namespace=namespace)
        return self._api.request("get", res.qualified, call)

    def list(
        self, res: Resource, *, namespace: str = "", selector: str = "", fields: str = ""
    ) -> tuple[list[Json], str]:
        """The objects (those the label ``selector`` and field selector ``fields`` match)
        and the list's resourceVersion."""
        method = _selected(self._methods.list(res, namespace=namespace), selector, fields)
        return self._api.list_all(res.qualified, method)

    def create(self, res: Resource, body: Json, *, namespace: str = "") -> Json:
        call = functools.partial(self._methods.create(res, namespace=namespace), body=body)
        return self._api.request("create", res.qualified, call)

    def replace(self, res: Resource, body: Json, *, namespace: str = "") -> Json:
        """PUT with the body's resourceVersion: a stale write fails with `errors.Busy`."""
        name = str(body["metadata"]["name"])
        method = self._methods.replace(res, name, namespace=namespace)
        return self._api.request("update", res.qualified, functools.partial(method, body=body),
                                 retry=False)  # fmt: skip

    def patch(
        self, res: Resource, name: str, patch: Json, *, namespace: str = "", subresource: str = ""
    ) -> Json:
        """A JSON merge patch (RFC 7386) of the object or of a subresource such as status.

        A patch that carries metadata.resourceVersion is guarded: the server
        refuses it with 409 Conflict (`errors.Busy`) once the object has
        moved on, and it is not repeated blindly (the caller re-reads).
        """
        method = self._methods.patch(res, name, namespace=namespace, subresource=subresource)
        call = functools.partial(method, body=patch, _content_type=_MERGE_PATCH)
        guarded = bool((patch.get("metadata") or {}).get("resourceVersion"))
        return self._api.request("patch", res.qualified, call, retry=not guarded)

    def delete(self, res: Resource, name: str, *, namespace: str = "") -> None:
        # Background, as kubectl deletes: dependents go too (a Job's own
        # default would orphan its Pods).
        method = self._methods.delete(res, name, namespace=namespace)
        call = functools.partial(method, propagation_policy="Background")
        # Already gone is what delete wants.
        with contextlib.suppress(errors.NotFound):
            self._api.request("delete", res.qualified, call)

    def watch(
        self,
        res: Resource,
        *,
        namespace: str = "",
        since: str,
        timeout: int = 60,
        bookmarks: bool = False,
        selector: str = "",
        fields: str = "",
    ) -> Iterator[WatchEvent]:
        """Changes after resourceVersion ``since`` until the server ends the stream.

        ``selector`` and ``fields``: only the objects these label and field
        selectors match, as for `list`.

        The server ends it after ``timeout`` seconds. With ``bookmarks`` the
        server may also send `BOOKMARK` events (how far the stream got): a
        later watch can start from them. A 410 Gone (history compacted) is
        `kube_errors.Expired`: list again.
        """
        what = res.qualified
        lister = _selected(self._methods.list(res, namespace=namespace), selector, fields)

        def open_stream(**query: Any) -> Any:
            # Watch adds watch=True and _preload_content=False; the door sends it.
            query.pop("_preload_content", None)
            call = functools.partial(lister, **query)
            return self._api.open("watch", what, call, read_timeout=timeout + _WATCH_GRACE)

        # "object": events keep the API's JSON, for built-in kinds and CRDs alike.
        watcher = _Watch(return_type="object")
        stream = watcher.stream(
            open_stream,
            resource_version=since,
            timeout_seconds=timeout,
            allow_watch_bookmarks=bookmarks,
        )
        try:
            for event in stream:
                yield WatchEvent(str(event["type"]), event["raw_object"])
        except k8s.ApiException as err:
            raise kube_errors.from_api_exception(
                err, verb="watch", what=what, server=self.server
            ) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise kube_errors.from_transport(
                err, verb="watch", what=what, server=self.server
            ) from err
        finally:
            stream.close()  # a watch left early closes its connection now


def _selected(method: Any, selector: str, fields: str) -> Any:
    """A list call narrowed to what the label and field selectors match ("": no selector)."""
    if selector:
        method = functools.partial(method, label_selector=selector)
    if fields:
        method = functools.partial(method, field_selector=fields)
    return method
