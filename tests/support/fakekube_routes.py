"""How the fake API server reads a request: paths, verbs, selectors, paging, discovery.

The REST layout is the real server's: ``/api/v1/...`` for the core group,
``/apis/GROUP/VERSION/...`` for the others, ``namespaces/NS/`` before the
plural of namespaced resources, then an optional name and subresource.

A body for a resource with a CRD schema is pruned here, before the store
sees it: the fields dropped become the answer's warnings, or a 400 when
the client asked for ``fieldValidation=Strict``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

from tests.support import fakekube_store
from tests.support.fakekube_store import ApiError, Obj, Resource

#: The identity the fake names in its RBAC refusals.
USER = "system:serviceaccount:csi-vm:csi-vm"
_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclasses.dataclass(frozen=True)
class Target:
    res: Resource
    namespace: str
    name: str
    subresource: str


@dataclasses.dataclass(frozen=True)
class Answer:
    code: int
    body: Obj
    #: what the real server says in Warning headers (fields it dropped)
    warnings: tuple[str, ...] = ()


def apply(
    store: fakekube_store.Store, verb: str, target: Target, query: dict[str, str], body: Any
) -> Answer:
    res, ns, name = target.res, target.namespace, target.name
    if verb == "list":
        return Answer(200, list_page(store, target, query))
    if verb == "get":
        return Answer(200, store.get(res, ns, name))
    if verb == "delete":
        return Answer(200, store.delete(res, ns, name))
    body, warnings = _pruned(res, body or {}, patch=verb == "patch", query=query)
    if verb == "create":
        return Answer(201, store.create(res, body, namespace=ns), warnings)
    if verb == "update":
        written = store.replace(res, ns, name, body, subresource=target.subresource)
    else:
        written = store.patch(res, ns, name, body, subresource=target.subresource)
    return Answer(200, written, warnings)


def _pruned(
    res: Resource, body: Obj, *, patch: bool, query: dict[str, str]
) -> tuple[Obj, tuple[str, ...]]:
    if res.schema is None:
        return body, ()
    pruned, dropped = res.schema.prune(body, patch=patch)
    said = tuple(f'unknown field "{path}"' for path in dropped)
    mode = query.get("fieldValidation") or "Warn"
    if mode == "Strict" and said:
        message = f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
        raise ApiError(400, "BadRequest", message + "strict decoding error: " + ", ".join(said))
    return pruned, said if mode == "Warn" else ()


def list_page(store: fakekube_store.Store, target: Target, query: dict[str, str]) -> Obj:
    """A list answer, paged by ``limit`` and ``continue`` as the real server pages.

    A continue token holds the first page's version and the last key
    served: later pages come from the objects as they were at that version.
    """
    version_of(query, watch=False)
    res, match = target.res, selector(query)
    if query.get("continue"):
        version, after = _token(query["continue"])
        items = store.list_at(res, version, namespace=target.namespace, match=match)
        items = [i for i in items if _key(i) > after]
    else:
        items, version = store.list_objects(res, namespace=target.namespace, match=match)
    limit = int(query.get("limit") or 0) or len(items)
    page, rest = items[:limit], items[limit:]
    meta: Obj = {"resourceVersion": str(version)}
    if rest:
        meta["continue"] = _encode(version, _key(page[-1]))
        if match is None:  # the real server counts only what no selector filtered
            meta["remainingItemCount"] = len(rest)
    return {
        "kind": f"{res.kind}List",
        "apiVersion": res.api_version,
        "metadata": meta,
        "items": page,
    }


def version_of(query: dict[str, str], *, watch: bool) -> int | None:
    """The request's resourceVersion; None for "" and "0" (from the current state).

    The real server refuses one that is not a number: 400 for a list, but
    500, with no reason, for a watch.
    """
    value = query.get("resourceVersion", "")
    if value in ("", "0"):
        return None
    try:
        return int(value)
    except ValueError:
        detail = f'resourceVersion: Invalid value: "{value}": not a number'
        if watch:
            raise ApiError(500, "", detail) from None
        raise ApiError(400, "BadRequest", f"invalid resource version: {detail}") from None


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _encode(version: int, after: str) -> str:
    token = json.dumps({"rv": version, "start": after}).encode()
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


def _token(value: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        message = f"invalid continue token: continue key is not valid: {err}"
        raise ApiError(400, "BadRequest", message) from None


def target(store: fakekube_store.Store, parts: list[str]) -> Target | None:
    """Resource, namespace, name and subresource of a resource path; None if unknown."""
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    res = store.resource(group, version, rest[0])
    if res is None:
        return None
    name = rest[1] if len(rest) > 1 else ""
    return Target(res, namespace, name, rest[2] if len(rest) > 2 else "")


def verb(method: str, target: Target, query: dict[str, str]) -> str:
    if method == "GET":
        if flag(query, "watch"):
            return "watch"
        return "get" if target.name else "list"
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    return verbs[method]


def flag(query: dict[str, str], name: str) -> bool:
    """A boolean query parameter, read as the real server reads it (Go's strconv.ParseBool)."""
    value = query.get(name, "")
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("", "0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ApiError(400, "BadRequest", f'invalid value "{value}" for {name}: not a boolean')


def selector(query: dict[str, str]) -> Any:
    """A predicate for equality-based label and metadata field selectors."""
    labels = _terms(query.get("labelSelector", ""))
    fields = _terms(query.get("fieldSelector", ""))
    if not labels and not fields:
        return None

    def match(obj: Obj) -> bool:
        meta = obj.get("metadata", {})
        have = meta.get("labels") or {}
        ok = all(_holds(have.get(key), op, value) for key, op, value in labels)
        values = {
            "metadata.name": meta.get("name"),
            "metadata.namespace": meta.get("namespace"),
            # the one spec field the real server selects Pods by that csi-vm uses
            "spec.nodeName": (obj.get("spec") or {}).get("nodeName"),
        }
        return ok and all(_holds(values.get(key), op, value) for key, op, value in fields)

    return match


def _terms(selector: str) -> list[tuple[str, str, str]]:
    terms = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if " in " in term or " notin " in term:
            raise ApiError(400, "BadRequest", f"the fake supports no set-based selector: {term}")
        for op in ("!=", "==", "="):
            if op in term:
                key, value = term.split(op, 1)
                terms.append((key.strip(), "!=" if op == "!=" else "=", value.strip()))
                break
        else:
            terms.append((term.lstrip("!"), "!" if term.startswith("!") else "exists", ""))
    return terms


def _holds(actual: Any, op: str, value: str) -> bool:
    if op == "exists":
        return actual is not None
    if op == "!":
        return actual is None
    return bool(actual == value) if op == "=" else bool(actual != value)


def forbidden(res: Resource, verb: str, namespace: str) -> ApiError:
    """A refusal worded as the real server words RBAC refusals."""
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{res.qualified} is forbidden: User "{USER}" cannot {verb} resource "{res.plural}" '
        f'in API group "{res.group}" {scope}'
    )
    return ApiError(403, "Forbidden", message, {"group": res.group, "kind": res.plural})


# -- discovery -----------------------------------------------------------------


def discovery(store: fakekube_store.Store, parts: list[str]) -> Obj | None:
    resources = store.resources()
    if parts == ["version"]:
        return {
            "major": "1",
            "minor": "31",
            "gitVersion": "v1.31.0-fake",
            "platform": "linux/amd64",
        }
    if parts == ["api"]:
        return {
            "kind": "APIVersions",
            "apiVersion": "v1",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }
    if parts == ["apis"]:
        groups = sorted({(r.group, r.version) for r in resources if r.group})
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [_group(g, [v for gg, v in groups if gg == g]) for g in dict(groups)],
        }
    if len(parts) == 2 and parts[0] == "apis":
        versions = sorted({r.version for r in resources if r.group == parts[1]})
        return _group(parts[1], versions) if versions else None
    if parts == ["api", "v1"] or (len(parts) == 3 and parts[0] == "apis"):
        group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
        listed = [r for r in resources if (r.group, r.version) == (group, version)]
        return _resource_list(group, version, listed) if listed else None
    return None


def _group(name: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def _resource_list(group: str, version: str, resources: list[Resource]) -> Obj:
    entries = []
    for res in resources:
        base = {"namespaced": res.namespaced, "kind": res.kind}
        entries.append(
            {"name": res.plural, "singularName": res.kind.lower(), "verbs": _VERBS, **base}
        )
        # The real server sends an empty singularName for subresources.
        status = {"name": f"{res.plural}/status", "singularName": "", **base}
        entries.append({**status, "verbs": ["get", "patch", "update"]})
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }
