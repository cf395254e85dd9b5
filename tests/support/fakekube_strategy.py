"""What the fake API server does to an object before it stores it.

The real server calls this a resource's strategy. The rules here are the
ones its custom resources follow, checked against a real server by
tests/integration/cluster/test_api_contract.py:

- with a ``status`` subresource, a create drops the status, a write to the
  object keeps the stored status, and a write to ``/status`` keeps
  everything but the status (labels and spec included);
- a replace (PUT) replaces metadata too, except what the server owns:
  uid, creationTimestamp, generation, deletionTimestamp;
- generation grows by one when anything outside metadata and status
  changes;
- a resource installed from a CRD prunes, defaults and validates against
  its schema (`fakekube_schema`), and wants a valid name.

Built-in resources registered without a status subresource keep the
fake's older leniency: a test may write their status through the object.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tests.support import fakekube_schema

if TYPE_CHECKING:
    from tests.support.fakekube_store import Resource

Obj = dict[str, Any]
#: Metadata the server owns: a write cannot change it.
SERVER_META = (
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def for_create(res: Resource, obj: Obj) -> Obj:
    obj = _structural(res, obj)
    if res.status_subresource:
        obj.pop("status", None)
    return obj


def for_update(res: Resource, old: Obj, sent: Obj, *, subresource: str) -> Obj:
    """The object a write of ``sent`` leaves stored: a PUT's body, or the merged patch."""
    if subresource == "status":
        new = copy.deepcopy(old)
        new.pop("status", None)
        if sent.get("status") is not None:
            new["status"] = copy.deepcopy(sent["status"])
        return _structural(res, new)
    new = _structural(res, sent)
    meta = new.setdefault("metadata", {})
    for field in SERVER_META:
        meta.pop(field, None)
        if field in old["metadata"]:
            meta[field] = old["metadata"][field]
    if res.status_subresource:
        new.pop("status", None)
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
    if _content(new) != _content(old):
        meta["generation"] = old["metadata"].get("generation", 1) + 1
    return new


def causes(res: Resource, obj: Obj, *, old: Obj | None = None) -> list[fakekube_schema.Cause]:
    """Why the real server would refuse to store ``obj`` (nothing: it would not)."""
    if res.schema is None:
        return []
    found = fakekube_schema.name_causes(obj.get("metadata") or {}) if old is None else []
    return found + res.schema.validate(obj, old=old)


def _structural(res: Resource, obj: Obj) -> Obj:
    """``obj`` pruned and defaulted by its schema, as the real server stores any write.

    A merge patch has been applied by now: a null it left inside a list (where
    null deletes nothing) goes here, as on the real server.
    """
    if res.schema is None:
        return copy.deepcopy(obj)
    pruned, _ = res.schema.prune(obj)
    return res.schema.default(pruned)


def _content(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}
