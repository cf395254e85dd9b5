"""Kubernetes Events: `kubectl describe` shows what the controller or a node agent did and why."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from csi_vm import errors
from csi_vm.crd import kinds
from csi_vm.kube import objects

log = logging.getLogger("csi_vm.crd.events")

COMPONENT = "csi-vm-controller"


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Recorder:
    def __init__(
        self,
        objs: objects.Objects,
        *,
        clock: Callable[[], datetime.datetime] = _utc_now,
        component: str = COMPONENT,
    ) -> None:
        self._objs = objs
        self._clock = clock
        # The node agent posts through the same recorder under its own name.
        self._component = component

    def record(
        self, obj: objects.Json, *, reason: str, message: str, warning: bool = False
    ) -> None:
        """Post an Event about ``obj``; a failure to post is logged, never raised."""
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        now = self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],  # the API server caps event messages near this size
            "type": "Warning" if warning else "Normal",
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._objs.create(kinds.EVENT, event, namespace=namespace)
        except errors.CsiVmError as err:
            # Events are advice; losing one must not fail the reconcile.
            log.warning("event %s on %s not posted: %s", reason, meta.get("name"), err)
