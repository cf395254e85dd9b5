"""Status writes that cannot lose a concurrent update.

The controller and the node agent both write the status of VMs and
migrations. Each write is a merge patch that carries the resourceVersion of
the object it was worked out from, so the API server refuses it (409
Conflict, `errors.Busy`) once someone else wrote in between. Then the object
is read again, the change is worked out again from what is there now, and
sent again: a few times, logged as "attempt n/m" by `csi_vm.csi.retry`.

Why this and not server-side apply with one field manager per writer: both
writers set the same fields (``phase``, ``message``), so apply would need
forced ownership changes, which let the last writer win again, and list-map
markers on ``conditions`` in every CRD; a guarded merge patch keeps the
merge of conditions by type here, in one place, and works on any server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from csi_vm import errors
from csi_vm.crd import models as crd
from csi_vm.crd import status
from csi_vm.csi import retry
from csi_vm.kube import objects

Json = objects.Json

#: A status change worked out from the object as it is now: the fields and
#: conditions to write, or None when that object no longer takes this change.
Change = Callable[[Json], tuple[Json, list[Json]] | None]

# client-go's retry.RetryOnConflict makes five attempts; the waits grow from
# 50 ms here, as the other writer may be in the middle of a few writes.
CONFLICTS = retry.RetryPolicy(attempts=5, first_delay=0.05, max_delay=0.8)


def fixed(fields: Json, conditions: list[Json]) -> Change:
    """A change that is the same whatever status it lands on: what the agent reports."""
    return lambda _now: (fields, conditions)


def unless_taken(
    obj: Json, *, fields: Json, conditions: list[Json], phases: Iterable[str]
) -> Change:
    """``fields`` and ``conditions``, unless the object moved into one of ``phases`` since ``obj``.

    ``phases`` are another writer's. A decision made before that writer took
    the object over is void; its write is a watch event of its own, which
    brings the object back for a pass that decides from there.
    """
    taken = frozenset(phases)
    before = _phase(obj)

    def change(now: Json) -> tuple[Json, list[Json]] | None:
        return None if _phase(now) != before and _phase(now) in taken else (fields, conditions)

    return change


def write(
    objs: objects.Objects,
    res: objects.Resource,
    obj: Json,
    *,
    change: Change,
    observed: bool,
    policy: retry.RetryPolicy = CONFLICTS,
    sleep: Callable[[float], None] = time.sleep,
) -> Json:
    """Patch ``obj``'s status with ``change``; skip a no-op; the object as written.

    ``observed``: also record the generation of ``obj`` (the spec this
    change was decided from) as observed; the node agent only reports. A
    field set to None is removed (merge patch). Conditions merge by type, so
    the controller and the node agent keep each other's. A change that no
    longer applies to the object as it is now is `errors.Busy`.
    """
    meta = crd.meta(obj)
    attempt = _Attempt(objs, res, obj, change=change, observed=observed)
    where = f"{res.plural} {'/'.join(filter(None, (meta.namespace, meta.name)))}"
    written = retry.call(
        attempt, what=f"write status of {where} on {objs.server}", policy=policy, sleep=sleep
    )
    if written is None:
        phase = _phase(attempt.current)
        raise errors.Busy(
            f"status of {where} not written: its phase became {phase} after this pass read "
            "it; the next pass decides from there"
        )
    return written


class _Attempt:
    """One try of a status write; every try after the first reads the object again."""

    def __init__(
        self, objs: objects.Objects, res: objects.Resource, obj: Json, *, change: Change,
        observed: bool,
    ) -> None:  # fmt: skip
        self._objs, self._res, self._change = objs, res, change
        self._meta = crd.meta(obj)
        self._generation = self._meta.generation if observed else None
        self.current = obj
        self._tries = 0

    def __call__(self) -> Json | None:
        if self._tries:
            # The last try failed: a conflict, or no answer (which may have
            # landed). Either way, start again from what is there now.
            self.current = self._objs.get(
                self._res, self._meta.name, namespace=self._meta.namespace
            )
        self._tries += 1
        wanted = self._change(self.current)
        if wanted is None:
            return None
        fields, conditions = wanted
        body = _body(
            self.current, fields=fields, conditions=conditions, generation=self._generation
        )
        if body is None:
            return self.current
        patch: Json = {"status": body}
        version = (self.current.get("metadata") or {}).get("resourceVersion")
        if version:
            patch["metadata"] = {"resourceVersion": version}
        return self._objs.patch(
            self._res, self._meta.name, patch, namespace=self._meta.namespace, subresource="status"
        )


def _phase(obj: Json) -> object:
    return (obj.get("status") or {}).get("phase")


def _body(
    obj: Json, *, fields: Json, conditions: list[Json], generation: int | None
) -> Json | None:
    """The status patch that applies ``fields`` and ``conditions`` to ``obj``; None: no change."""
    old = obj.get("status") or {}
    body = {**fields, "conditions": status.merged(list(old.get("conditions") or ()), conditions)}
    if generation is not None:
        body["observedGeneration"] = generation
    # Nothing new: skip the write, so a pass caused by our own status update
    # does not write (and trigger) again.
    return None if _unchanged(old, body) else body


def _unchanged(old: Json, new: Json) -> bool:
    # A merge patch drops keys set to None, so None matches an absent key.
    return all(old.get(key) == value for key, value in new.items() if value is not None) and all(
        key not in old for key, value in new.items() if value is None
    )
