"""The controller loop: lead through a Lease, then list, watch and reconcile.

Each watched resource gets one thread that lists every object, reconciles
it, then follows a watch from the list's resourceVersion (`csi_vm.kube.informer`).
Every ``resync`` seconds it lists again: that re-reconciles objects whose
children (PVCs, VolumeSnapshots, Jobs) made progress without an event on the
object itself. A 410 Gone from a watch also lists again. Losing the Lease
stops the workers; only one replica writes. On stop
(SIGTERM) the workers take nothing new, the reconciles under way finish, and
the Lease is released, so another replica takes over at once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from csi_vm import errors
from csi_vm.controller import (
    context,
    leader,
    reconcile_clone,
    reconcile_migration,
    reconcile_report,
    reconcile_restore,
    reconcile_snapshot,
    reconcile_vm,
)
from csi_vm.crd import kinds
from csi_vm.kube import informer, objects

log = logging.getLogger("csi_vm.controller")

Reconciler = Callable[[context.Context, objects.Json], None]
#: How long a stopping leader waits for the reconciles under way before it
#: releases the Lease: well inside a pod's default 30 s termination grace.
QUIESCE_SECONDS = 15.0

RECONCILERS: dict[objects.Resource, Reconciler] = {
    kinds.STORAGE_CLASS: reconcile_report.reconcile_class,
    kinds.VM: reconcile_vm.reconcile,
    kinds.SNAPSHOT: reconcile_snapshot.reconcile,
    kinds.RESTORE: reconcile_restore.reconcile,
    kinds.CLONE: reconcile_clone.reconcile,
    kinds.MIGRATION: reconcile_migration.reconcile,
}


def reconcile(ctx: context.Context, res: objects.Resource, obj: objects.Json) -> None:
    """One object through its reconciler; errors are logged and counted, never raised."""
    name = (obj.get("metadata") or {}).get("name")
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return  # children go with it through their ownerReferences
    try:
        RECONCILERS[res](ctx, obj)
    except errors.CsiVmError as err:
        ctx.metrics.reconciles.labels(res.plural, "error").inc()
        log.warning("reconcile %s %s: %s", res.plural, name, err)
        if isinstance(err, errors.Rejected) and res in kinds.KIND:
            _tell_rejected(ctx, res, obj, err)
        return
    ctx.metrics.reconciles.labels(res.plural, "ok").inc()


def _tell_rejected(
    ctx: context.Context, res: objects.Resource, obj: objects.Json, err: errors.Rejected
) -> None:
    """A request that cannot work as asked says why on the object itself."""
    try:
        context.refuse(ctx, res, obj, reason="Rejected", message=str(err))
    except errors.CsiVmError as again:
        log.warning("status of %s %s not written: %s", res.plural, obj["metadata"]["name"], again)


@dataclasses.dataclass(kw_only=True)
class Controller:
    ctx: context.Context
    namespace: str = ""  # "" watches every namespace
    resync: int = 30
    # Reconciles under way, so a stopping leader can wait for them.
    _idle: threading.Condition = dataclasses.field(default_factory=threading.Condition, init=False)
    _running: int = dataclasses.field(default=0, init=False)

    def sync(self, res: objects.Resource) -> str:
        """Reconcile every object of ``res``; the list's resourceVersion."""
        return informer.sync(self.ctx.objs, res, namespace=self._ns(res), handle=self._handler(res))

    def follow(self, res: objects.Resource, stop: threading.Event) -> None:
        """Sync, then reconcile each change, until ``stop``; list again after every watch."""
        informer.follow(
            self.ctx.objs,
            res,
            namespace=self._ns(res),
            resync=self.resync,
            stop=stop,
            handle=self._handler(res, stop),
        )

    def quiesce(self, timeout: float) -> bool:
        """Wait until no reconcile is under way; False if one still is after ``timeout`` s."""
        with self._idle:
            return self._idle.wait_for(lambda: self._running == 0, timeout)

    def _handler(
        self, res: objects.Resource, stop: threading.Event | None = None
    ) -> informer.Handler:
        def handle(kind: str, obj: objects.Json) -> None:
            if kind == "DELETED":  # children go with it through their ownerReferences
                return
            with self._idle:
                if stop is not None and stop.is_set():
                    return  # no longer leading: nothing new is started
                self._running += 1
            try:
                reconcile(self.ctx, res, obj)
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        return handle

    def _ns(self, res: objects.Resource) -> str:
        return self.namespace if res.namespaced else ""


def run(controller: Controller, elector: leader.Elector, stop: threading.Event) -> None:
    """Lead, work while leading, and hand the Lease back once ``stop`` is set (SIGTERM)."""
    try:
        while not stop.is_set():
            if elector.try_acquire():
                _lead(controller, elector, stop)
            else:
                stop.wait(leader.RENEW_SECONDS)
    finally:
        elector.release()


def _lead(controller: Controller, elector: leader.Elector, stop: threading.Event) -> None:
    lost = threading.Event()
    workers = [
        threading.Thread(
            target=controller.follow, args=(res, lost), name=f"follow-{res.plural}", daemon=True
        )
        for res in RECONCILERS
    ]
    for worker in workers:
        worker.start()
    try:
        while not stop.wait(leader.RENEW_SECONDS):
            if not elector.try_acquire():
                log.warning("%s lost the lease; stopping work", elector.identity)
                break
    finally:
        # The workers end with their current watch span; what they reconcile
        # now must finish before the Lease may go to another replica.
        lost.set()
        if not controller.quiesce(QUIESCE_SECONDS):
            log.warning("reconciles still under way after %.0f s; stopping anyway", QUIESCE_SECONDS)
