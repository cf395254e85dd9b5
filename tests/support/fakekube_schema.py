"""The structural schema of a CustomResourceDefinition, as the fake API server applies it.

A CRD installed in the fake (`fakekube.FakeKube.install_crds`) gives each
served version a `Schema`. A write to such a resource goes through what
the real server does with its body, in the same order:

1. prune: fields the schema does not know are dropped, and so are nulls in
   fields that are not ``nullable``; each dropped field is reported, as the
   real server reports it in a ``Warning`` header (or refuses the write
   when the client asked for ``fieldValidation=Strict``);
2. default: missing fields that have a ``default`` get it;
3. validate: type, required, enum, pattern, length, bounds, item counts,
   date-time format and list-map keys. An update is ratcheted as on the
   real server: a value the write left unchanged is not checked again.

Failures read as the real server's field errors ("spec.cpus: Invalid
value: 0: spec.cpus in body should be greater than or equal to 1"), so
tests can match on the field path. Only the keywords csi-vm's CRDs use are
implemented; CEL rules and ``x-kubernetes-int-or-string`` are not.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import re
from collections.abc import Iterator
from typing import Any

Obj = dict[str, Any]

#: Fields of ObjectMeta; any other field under metadata is dropped.
META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_TOP = ("apiVersion", "kind", "metadata")
# A lowercase RFC 1123 subdomain: what the real server requires of a custom object's name.
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Cause:
    """One field error: ``reason`` as the real server's details.causes name it."""

    reason: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class Schema:
    """An openAPIV3Schema of one CRD version."""

    def __init__(self, root: Obj) -> None:
        self.root = root

    def prune(self, obj: Any, *, patch: bool = False) -> tuple[Any, list[str]]:
        """``obj`` without the fields the schema does not know, and their paths.

        A merge ``patch`` keeps its nulls: there they delete a field.
        """
        dropped: list[str] = []
        pruned = _prune(copy.deepcopy(obj), self.root, "", dropped, patch=patch, top=True)
        return pruned, dropped

    def default(self, obj: Obj) -> Obj:
        """``obj`` with the schema's defaults filled in where fields are missing."""
        return dict(_default(copy.deepcopy(obj), self.root))

    def validate(self, obj: Obj, *, old: Obj | None = None) -> list[Cause]:
        """Field errors of ``obj``; with ``old``, values equal to the old ones are not checked."""
        body = {k: v for k, v in obj.items() if k not in _TOP}
        before: Any = _MISSING if old is None else {k: v for k, v in old.items() if k not in _TOP}
        root = {**self.root, "properties": _without(self.root.get("properties") or {}, _TOP)}
        return list(_validate(body, root, "", before))


def name_causes(meta: Obj) -> list[Cause]:
    """What the real server says about a custom object's name."""
    name = meta.get("name")
    if not name:
        return []
    if len(name) > 253:
        return [_invalid("metadata.name", name, "must be no more than 253 characters")]
    if not _SUBDOMAIN.match(name):
        detail = (
            "a lowercase RFC 1123 subdomain: lower case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
        return [_invalid("metadata.name", name, detail)]
    return []


# -- pruning ---------------------------------------------------------------------


def _prune(
    value: Any, schema: Obj, path: str, dropped: list[str], *, patch: bool, top: bool
) -> Any:
    if isinstance(value, dict) and _type(schema) == "object":
        return _prune_object(value, schema, path, dropped, patch=patch, top=top)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            _prune(item, schema["items"], f"{path}[{i}]", dropped, patch=patch, top=False)
            for i, item in enumerate(value)
        ]
    if _type(schema) == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)  # stored as the integer it is: 2.0 reads back as 2
    return value


def _prune_object(
    value: Obj, schema: Obj, path: str, dropped: list[str], *, patch: bool, top: bool
) -> Obj:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    keep_unknown = schema.get("x-kubernetes-preserve-unknown-fields") is True
    result: Obj = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if top and key == "metadata" and isinstance(item, dict):
            result[key] = _prune_meta(item, dropped)
            continue
        sub = props.get(key, extra if isinstance(extra, dict) else None)
        if sub is None and not (keep_unknown or (top and key in _TOP)):
            dropped.append(where)
            continue
        if item is None and not patch and not (sub or {}).get("nullable"):
            continue  # the real server drops nulls where the schema allows none
        result[key] = _prune(item, sub or {}, where, dropped, patch=patch, top=False)
    return result


def _prune_meta(meta: Obj, dropped: list[str]) -> Obj:
    for key in [k for k in meta if k not in META_FIELDS]:
        dropped.append(f"metadata.{key}")
        del meta[key]
    return meta


# -- defaulting ------------------------------------------------------------------


def _default(value: Any, schema: Obj) -> Any:
    if isinstance(value, dict) and _type(schema) == "object":
        for key, sub in (schema.get("properties") or {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = _default(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_default(item, schema["items"]) for item in value]
    return value


# -- validation ------------------------------------------------------------------


def _validate(value: Any, schema: Obj, path: str, old: Any) -> Iterator[Cause]:
    if old is not _MISSING and value == old:
        return  # ratcheting: what the write did not change is not checked again
    if value is None and schema.get("nullable"):
        return
    kind = _type(schema)
    if kind and not _is(value, kind):
        found = _json_type(value)
        yield _invalid(path, found, f'{path} in body must be of type {kind}: "{found}"')
        return
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(json.dumps(v) for v in schema["enum"])
        said = f"Unsupported value: {json.dumps(value)}: supported values: {allowed}"
        yield Cause("FieldValueNotSupported", path, said)
        return
    if isinstance(value, dict):
        yield from _validate_object(value, schema, path, old)
    elif isinstance(value, list):
        yield from _validate_list(value, schema, path, old)
    elif isinstance(value, str):
        yield from _validate_string(value, schema, path)
    elif isinstance(value, int | float):
        yield from _validate_number(value, schema, path)


def _validate_object(value: Obj, schema: Obj, path: str, old: Any) -> Iterator[Cause]:
    for key in schema.get("required") or ():
        if key not in value:
            yield Cause("FieldValueRequired", _join(path, key), "Required value")
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    before = old if isinstance(old, dict) else {}
    for key, item in value.items():
        sub = props.get(key, extra if isinstance(extra, dict) else None)
        if sub is not None:
            yield from _validate(item, sub, _join(path, key), before.get(key, _MISSING))


def _validate_list(value: list[Any], schema: Obj, path: str, old: Any) -> Iterator[Cause]:
    least, most = schema.get("minItems"), schema.get("maxItems")
    if least is not None and len(value) < least:
        yield _invalid(path, len(value), f"{path} in body should have at least {least} items")
    if most is not None and len(value) > most:
        said = f"Too many: {len(value)}: must have at most {most} items"
        yield Cause("FieldValueTooMany", path, said)
    yield from _duplicates(value, schema, path)
    items = schema.get("items")
    if not isinstance(items, dict):
        return
    olds = _correlated(value, schema, old)
    for i, item in enumerate(value):
        yield from _validate(item, items, f"{path}[{i}]", olds[i])


def _duplicates(value: list[Any], schema: Obj, path: str) -> Iterator[Cause]:
    kind = schema.get("x-kubernetes-list-type")
    if kind not in ("map", "set"):
        return
    seen: list[Any] = []
    for i, item in enumerate(value):
        key = _map_key(item, schema) if kind == "map" else item
        if key in seen:
            said = f"Duplicate value: {json.dumps(key)}"
            yield Cause("FieldValueDuplicate", f"{path}[{i}]", said)
        seen.append(key)


def _correlated(value: list[Any], schema: Obj, old: Any) -> list[Any]:
    """The old item each new item is compared with: by key in a list-map, none otherwise."""
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
        return [_MISSING] * len(value)
    by_key = {json.dumps(_map_key(item, schema)): item for item in old}
    return [by_key.get(json.dumps(_map_key(item, schema)), _MISSING) for item in value]


def _map_key(item: Any, schema: Obj) -> Any:
    if not isinstance(item, dict):
        return item
    return {k: item.get(k) for k in schema.get("x-kubernetes-list-map-keys") or ()}


def _validate_string(value: str, schema: Obj, path: str) -> Iterator[Cause]:
    longest, shortest = schema.get("maxLength"), schema.get("minLength")
    if longest is not None and len(value) > longest:
        said = f"Too long: may not be more than {longest} bytes"
        yield Cause("FieldValueTooLong", path, said)
    if shortest is not None and len(value) < shortest:
        yield _invalid(path, value, f"{path} in body should be at least {shortest} chars long")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        yield _invalid(path, value, f"{path} in body should match '{schema['pattern']}'")
    if schema.get("format") == "date-time" and not _is_date_time(value):
        yield _invalid(path, value, f'{path} in body must be of type date-time: "{value}"')


def _validate_number(value: float, schema: Obj, path: str) -> Iterator[Cause]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and value < low:
        yield _invalid(path, value, f"{path} in body should be greater than or equal to {low}")
    if high is not None and value > high:
        yield _invalid(path, value, f"{path} in body should be less than or equal to {high}")


# -- helpers ---------------------------------------------------------------------


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", path, f"Invalid value: {json.dumps(value)}: {detail}")


def _type(schema: Obj) -> str:
    return str(schema.get("type") or "")


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        # JSON has one number type: 2.0 is an integer to the real server too.
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    checks: dict[str, type | tuple[type, ...]] = {
        "number": (int, float),
        "string": str,
        "object": dict,
        "array": list,
    }
    return isinstance(value, checks.get(kind, object))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", dict: "object", list: "array"}
    return names.get(type(value), type(value).__name__)


def _is_date_time(value: str) -> bool:
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value.upper()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _without(props: Obj, keys: tuple[str, ...]) -> Obj:
    return {k: v for k, v in props.items() if k not in keys}
