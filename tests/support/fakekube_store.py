"""The in-memory object store behind the fake Kubernetes API server.

Generic on purpose: any resource can be registered by group, version, plural
and kind, and every registered resource gets list, get, create, replace,
merge-patch, delete and watch with increasing resourceVersions, so later
controller tests can reuse it. What it mimics of the real API server
(`fakekube_strategy` has what a write does to the object itself):

- resourceVersion is one counter for the whole store; lists report it, and a
  watch from version N sees every change after N (410 Gone once compacted);
- a write that changes nothing stores nothing: no new version, no event;
- deleting an object that still has finalizers only sets deletionTimestamp;
  it disappears when a patch or replace empties its finalizers;
- replace or merge patch with a metadata.resourceVersion other than the
  stored one is a 409 Conflict (the precondition of optimistic concurrency);
  without one a patch applies to whatever is stored, and so does a replace
  of a built-in kind (a custom resource's replace must carry one: 422);
- an object breaking its CRD's schema is refused with 422 Invalid;
- with `require_namespaces`, an object needs its Namespace (404 without);
- list pages after the first are served from the first page's version;
- a watch from "" starts with the current objects; with bookmarks, those
  end with a BOOKMARK marked ``k8s.io/initial-events-end``, and a watch
  longer than `BOOKMARK_LEAD` gets a BOOKMARK that long before its end
  (the real server's usual timing, which its watch cache may vary).

It has no garbage collector: objects whose ownerReferences name a deleted
owner stay, where a real cluster deletes them.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import itertools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from tests.support import fakekube_schema, fakekube_strategy

Obj = dict[str, Any]
#: Seconds before a watch's end at which the real server sends its bookmark.
BOOKMARK_LEAD = 2.0
#: The annotation of the bookmark that ends a watch's initial events.
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


@dataclasses.dataclass(frozen=True)
class Resource:
    group: str  # "" for the core API
    version: str
    plural: str
    kind: str
    namespaced: bool
    # How the resource is served, not which one it is: a test's own
    # Resource("csi-vm.io", ...) names the registered one, and the store
    # serves it as registered.
    status_subresource: bool = dataclasses.field(default=False, compare=False)
    #: the CRD's schema, for a resource installed from one; None for built-ins
    schema: fakekube_schema.Schema | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How API messages name the resource: "csidrivers.storage.k8s.io"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


class ApiError(Exception):
    """An API failure, rendered by the server as a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        answer: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:  # the real server leaves it out of some 500s
            answer["reason"] = self.reason
        if self.details:
            answer["details"] = self.details
        return {**answer, "code": self.code}


@dataclasses.dataclass(frozen=True)
class _Event:
    rv: int
    resource: Resource
    namespace: str
    type: str
    obj: Obj


class Store:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._resources: dict[tuple[str, str, str], Resource] = {}
        self._objects: dict[tuple[Resource, str, str], Obj] = {}
        self._events: list[_Event] = []
        self._rv = 0
        self._compacted = 0  # watches from a version below this get 410 Gone
        # The objects as they were at version _compacted: with the events
        # after it, any later version can be rebuilt (for list pages).
        self._base: dict[tuple[Resource, str, str], Obj] = {}
        self._closed = False
        #: refuse objects in a namespace with no Namespace object (NamespaceLifecycle)
        self.require_namespaces = False

    # -- resources ------------------------------------------------------------

    def register(self, resource: Resource) -> None:
        with self._cond:
            self._resources[(resource.group, resource.version, resource.plural)] = resource

    def unregister(self, group: str, version: str, plural: str) -> None:
        """Remove a resource and its objects, as uninstalling a CRD does."""
        with self._cond:
            res = self._resources.pop((group, version, plural), None)
            for key in [k for k in self._objects if k[0] == res]:
                del self._objects[key]

    def resource(self, group: str, version: str, plural: str) -> Resource | None:
        with self._cond:
            return self._resources.get((group, version, plural))

    def resources(self) -> list[Resource]:
        with self._cond:
            return list(self._resources.values())

    def resource_of(self, obj: Obj) -> Resource:
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        with self._cond:
            for res in self._resources.values():
                if (res.group, res.version, res.kind) == (group, version, obj["kind"]):
                    return res
        raise KeyError(f"no resource registered for {obj['apiVersion']} {obj['kind']}")

    # -- reads ----------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._rv

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        with self._cond:
            return copy.deepcopy(self._existing(res, namespace, name))

    def list_objects(
        self, res: Resource, *, namespace: str = "", match: Any = None
    ) -> tuple[list[Obj], int]:
        """Matching objects in list order (namespace/name), and the store's version."""
        with self._cond:
            found = [
                copy.deepcopy(obj)
                for (r, ns, _), obj in sorted(self._objects.items(), key=_list_order)
                if r == res and (not namespace or ns == namespace) and (match is None or match(obj))
            ]
            return found, self._rv

    def list_at(
        self, res: Resource, version: int, *, namespace: str = "", match: Any = None
    ) -> list[Obj]:
        """The matching objects as they were at ``version``, in list order."""
        with self._cond:
            if version < self._compacted:
                raise ApiError(410, "Expired", _CONTINUE_TOO_OLD)
            state = dict(self._base)
            for event in self._events:
                if event.rv > version:
                    break
                key = (event.resource, event.namespace, event.obj["metadata"]["name"])
                if event.type == "DELETED":
                    state.pop(key, None)
                else:
                    state[key] = event.obj
            return [
                copy.deepcopy(obj)
                for (r, ns, _), obj in sorted(state.items(), key=_list_order)
                if r == res and (not namespace or ns == namespace) and (match is None or match(obj))
            ]

    # -- writes ---------------------------------------------------------------

    def add(self, obj: Obj) -> Obj:
        """Create an object whose apiVersion and kind name a registered resource.

        A test's seed: a status it carries is written through ``status``
        after the create, as a controller would have written it.
        """
        res = self.resource_of(obj)
        namespace = obj.get("metadata", {}).get("namespace", "")
        created = self.create(res, obj, namespace=namespace)
        if not res.status_subresource or obj.get("status") is None:
            return created
        meta = created["metadata"]
        seeded = {**created, "status": obj["status"]}
        return self.replace(res, namespace, meta["name"], seeded, subresource="status")

    def create(self, res: Resource, obj: Obj, *, namespace: str = "") -> Obj:
        res = self._served(res)
        meta = obj.get("metadata") or {}
        namespace = namespace if res.namespaced else ""
        if res.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise ApiError(400, "BadRequest", _NAMESPACE_MISMATCH)
        obj = fakekube_strategy.for_create(res, obj)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name") or _generated_name(res, meta)
        with self._cond:
            self._check_namespace(res, namespace)
            if (res, namespace, name) in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{res.qualified} "{name}" already exists',
                    _details(res, name),
                )
            meta.update(name=name)
            _refuse_invalid(res, name, fakekube_strategy.causes(res, obj))
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
            if res.namespaced:
                meta["namespace"] = namespace
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            return self._store(res, namespace, name, obj, "ADDED")

    def replace(
        self, res: Resource, namespace: str, name: str, obj: Obj, *, subresource: str = ""
    ) -> Obj:
        """Replace the object (PUT); for ``status``, only its status."""
        res = self._served(res)
        sent = (obj.get("metadata") or {}).get("name")
        if sent not in (None, name):
            message = f"the name of the object ({sent}) does not match the name on the URL ({name})"
            raise ApiError(400, "BadRequest", message)
        with self._cond:
            old = self._existing(res, namespace, name)
            if res.schema is not None and not (obj.get("metadata") or {}).get("resourceVersion"):
                # A custom resource allows no unconditional update.
                said = "metadata.resourceVersion: Invalid value: 0: must be specified for an update"
                message = f'{res.qualified} "{name}" is invalid: {said}'
                raise ApiError(422, "Invalid", message, _details(res, name))
            _check_version(res, name, old, obj)
            new = fakekube_strategy.for_update(res, old, obj, subresource=subresource)
            return self._update(res, namespace, name, old, new)

    def patch(
        self, res: Resource, namespace: str, name: str, patch: Obj, *, subresource: str = ""
    ) -> Obj:
        """Apply a JSON merge patch (RFC 7386); for ``status``, only its status part."""
        res = self._served(res)
        with self._cond:
            old = self._existing(res, namespace, name)
            # The server applies the patch, then checks the result's
            # resourceVersion against the stored one: a version in the patch
            # is a precondition.
            _check_version(res, name, old, patch)
            merged = merge_patch(copy.deepcopy(old), patch)
            new = fakekube_strategy.for_update(res, old, merged, subresource=subresource)
            return self._update(res, namespace, name, old, new)

    def delete(self, res: Resource, namespace: str, name: str) -> Obj:
        with self._cond:
            obj = self._existing(res, namespace, name)
            meta = obj["metadata"]
            if meta.get("finalizers"):
                if "deletionTimestamp" not in meta:
                    new = copy.deepcopy(obj)
                    new["metadata"]["deletionTimestamp"] = _now()
                    return self._store(res, namespace, name, new, "MODIFIED")
                return copy.deepcopy(obj)
            return self._remove(res, namespace, name)

    # -- watch ----------------------------------------------------------------

    def watch(
        self,
        res: Resource,
        *,
        namespace: str = "",
        since: int | None,
        timeout: float,
        match: Any = None,
        bookmarks: bool = False,
    ) -> Iterator[Obj]:
        """Watch events after version ``since``; None starts with the current objects.

        With ``bookmarks``, the current objects end with a BOOKMARK marked
        `INITIAL_EVENTS_END`, and a watch longer than `BOOKMARK_LEAD` gets a
        BOOKMARK at the store's version that long before its end. That is
        the real server's usual answer; its watch cache decides, and may
        send a bookmark earlier, or none (while it lags the version the
        watch started from), so clients must not count on one.
        """
        deadline = time.monotonic() + timeout
        if since is None:
            current, since = self.list_objects(res, namespace=namespace, match=match)
            yield from ({"type": "ADDED", "object": obj} for obj in current)
            if bookmarks:
                yield {"type": "BOOKMARK", "object": _bookmark(res, since, initial_end=True)}
        elif since < self._compacted:
            yield {"type": "ERROR", "object": _gone(since, self._compacted)}
            return
        lead = deadline - BOOKMARK_LEAD if bookmarks and timeout > BOOKMARK_LEAD else None
        position = since
        while True:
            pending, now = self._wait_events(res, namespace, position, lead or deadline)
            for event in pending:
                position = event.rv
                if match is None or match(event.obj):
                    yield {"type": event.type, "object": copy.deepcopy(event.obj)}
            if pending:
                continue
            if self._closed or lead is None:
                return
            lead = None
            if now >= since:
                yield {"type": "BOOKMARK", "object": _bookmark(res, now)}

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does."""
        with self._cond:
            self._events.clear()
            self._compacted = self._rv
            self._base = copy.deepcopy(self._objects)

    def close(self) -> None:
        """End every watch; the server is going away."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- internals ------------------------------------------------------------

    def _wait_events(
        self, res: Resource, namespace: str, position: int, deadline: float
    ) -> tuple[list[_Event], int]:
        """Events after ``position``, and the store's version they were looked up at."""
        with self._cond:
            while True:
                pending = [
                    e
                    for e in self._events
                    if e.rv > position
                    and e.resource == res
                    and (not namespace or e.namespace == namespace)
                ]
                remaining = deadline - time.monotonic()
                if pending or self._closed or remaining <= 0:
                    return pending, self._rv
                self._cond.wait(remaining)

    def _served(self, res: Resource) -> Resource:
        """The registered resource ``res`` names, which says how it is served."""
        with self._cond:
            return self._resources.get((res.group, res.version, res.plural), res)

    def _check_namespace(self, res: Resource, namespace: str) -> None:
        if not (self.require_namespaces and res.namespaced):
            return
        if not any(r.plural == "namespaces" and not r.group and n == namespace
                   for r, _, n in self._objects):  # fmt: skip
            details = {"name": namespace, "kind": "namespaces"}
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found', details)

    def _existing(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self._objects.get((res, namespace if res.namespaced else "", name))
        if obj is None:
            raise ApiError(
                404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name)
            )
        return obj

    def _update(self, res: Resource, namespace: str, name: str, old: Obj, new: Obj) -> Obj:
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        meta = new["metadata"]
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return copy.deepcopy(old)  # nothing changed: nothing is written
        _refuse_invalid(res, name, fakekube_strategy.causes(res, new, old=old))
        if "deletionTimestamp" in meta and not meta.get("finalizers"):
            self._objects[(res, namespace, name)] = new
            return self._remove(res, namespace, name)
        return self._store(res, namespace, name, new, "MODIFIED")

    def _store(self, res: Resource, namespace: str, name: str, obj: Obj, kind: str) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._objects[(res, namespace, name)] = obj
        self._record(res, namespace, kind, obj)
        return copy.deepcopy(obj)

    def _remove(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self._objects.pop((res, namespace, name))
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self._record(res, namespace, "DELETED", obj)
        return copy.deepcopy(obj)

    def _record(self, res: Resource, namespace: str, kind: str, obj: Obj) -> None:
        self._events.append(_Event(self._rv, res, namespace, kind, copy.deepcopy(obj)))
        self._cond.notify_all()


def _list_order(item: tuple[tuple[Resource, str, str], Obj]) -> str:
    # The real server lists in the order of its storage keys: namespace/name.
    (_, namespace, name), _ = item
    return f"{namespace}/{name}"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_names = itertools.count(1)


def _generated_name(res: Resource, meta: Obj) -> str:
    prefix = meta.get("generateName")
    if not prefix:
        said = "Required value: name or generateName is required"
        _refuse_invalid(
            res, "", [fakekube_schema.Cause("FieldValueRequired", "metadata.name", said)]
        )
    return f"{prefix}{next(_names):05x}"


def _refuse_invalid(res: Resource, name: str, causes: list[fakekube_schema.Cause]) -> None:
    """422 Invalid, worded as the real server words it, when there is anything to say."""
    if not causes:
        return
    said = ", ".join(str(c) for c in causes)
    listed = said if len(causes) == 1 else f"[{said}]"
    group = f"{res.kind}.{res.group}" if res.group else res.kind
    details = {
        **_details(res, name),
        "kind": res.kind,
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
    }
    raise ApiError(422, "Invalid", f'{group} "{name}" is invalid: {listed}', details)


def _check_version(res: Resource, name: str, stored: Obj, sent: Obj) -> None:
    version = str((sent.get("metadata") or {}).get("resourceVersion") or "")
    if version and version != stored["metadata"]["resourceVersion"]:
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            _details(res, name),
        )


def _bookmark(res: Resource, version: int, *, initial_end: bool = False) -> Obj:
    # An object of the watched kind with nothing but the version set.
    meta: Obj = {"resourceVersion": str(version)}
    if initial_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    return {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}


def _details(res: Resource, name: str) -> Obj:
    return {"name": name, "group": res.group, "kind": res.plural}


_NAMESPACE_MISMATCH = (
    "the namespace of the provided object does not match the namespace sent on the request"
)
_CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. "
    "Start a new list without the continue parameter."
)


def _gone(since: int, oldest: int) -> Obj:
    return ApiError(410, "Expired", f"too old resource version: {since} ({oldest})").status()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
