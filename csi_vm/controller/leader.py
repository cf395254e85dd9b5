"""Leader election through a coordination.k8s.io Lease, judged by each replica's own clock.

The API server's optimistic concurrency is the whole consensus: every write
of the Lease carries the resourceVersion that was read, so of two replicas
racing for the Lease exactly one write succeeds and the other gets a 409
Conflict (`errors.Busy`).

Nodes' wall clocks may disagree by any amount, so no replica compares the
Lease's renewTime with its own wall clock. As client-go's leaderelection
does, a candidate notes on its own monotonic clock when it last saw the
Lease change (holder, renewTime or resourceVersion), and takes over only
once leaseDurationSeconds have passed on that clock without a change. The
holder leads while its last renewal is less than `RENEW_DEADLINE` old on its
own monotonic clock, shorter than the lease, so it has stopped before anyone
may take over. A released Lease (no holder) is free at once. The times
written into the Lease are for people reading it.

Durations are client-go's defaults, as kube-controller-manager uses them:
a 15 s lease, a 10 s renew deadline, a try every 2 s.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable

from csi_vm import errors
from csi_vm.crd import kinds
from csi_vm.kube import objects

log = logging.getLogger("csi_vm.controller.leader")

LEASE_SECONDS = 15
RENEW_DEADLINE = 10.0
RENEW_SECONDS = 2.0
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"  # MicroTime, the format of Lease times


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(kw_only=True)
class Elector:
    objs: objects.Objects
    namespace: str
    name: str
    identity: str
    lease_seconds: int = LEASE_SECONDS
    renew_deadline: float = RENEW_DEADLINE
    #: the wall clock, only for the times written into the Lease
    clock: Callable[[], datetime.datetime] = _utc_now
    #: the clock every judgement uses: this replica's own, never another's
    monotonic: Callable[[], float] = time.monotonic
    # (holder, renewTime, resourceVersion) last seen, and when (monotonic)
    _seen: tuple[object, object, object] | None = dataclasses.field(default=None, init=False)
    _seen_at: float = dataclasses.field(default=0.0, init=False)
    # when this replica last wrote the Lease as its holder (monotonic); None: not leading
    _renewed_at: float | None = dataclasses.field(default=None, init=False)

    def try_acquire(self) -> bool:
        """Take or renew the Lease; True while this replica leads."""
        now = self.monotonic()
        try:
            return self._try(now)
        except errors.Transient as err:
            # No answer, or someone wrote since the read: a leader stays one
            # until its renew deadline, as the others wait out the lease.
            leading = self._leading(now)
            log.warning("lease %s/%s: %s (leading: %s)", self.namespace, self.name, err, leading)
            return leading

    def release(self) -> None:
        """Give the Lease up on shutdown, so another replica can take it at once."""
        was_leading, self._renewed_at = self._renewed_at is not None, None
        try:
            lease = self.objs.get(kinds.LEASE, self.name, namespace=self.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            # As client-go releases: no holder, and a one-second duration for
            # readers that only look at the times.
            lease["spec"] = {**spec, "holderIdentity": None, "leaseDurationSeconds": 1,
                             "renewTime": self._stamp()}  # fmt: skip
            self.objs.replace(kinds.LEASE, lease, namespace=self.namespace)
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except (errors.NotFound, errors.Transient) as err:
            if was_leading:
                log.warning("lease %s/%s not released: %s", self.namespace, self.name, err)

    # -- one try ----------------------------------------------------------------

    def _try(self, now: float) -> bool:
        try:
            lease = self.objs.get(kinds.LEASE, self.name, namespace=self.namespace)
        except errors.NotFound:
            return self._create(now)
        self._see(lease, now)
        holder = (lease.get("spec") or {}).get("holderIdentity")
        if holder and holder != self.identity and not self._expired(lease, now):
            self._renewed_at = None
            return False
        return self._write(lease, taking_over=holder != self.identity, now=now)

    def _create(self, now: float) -> bool:
        stamp = self._stamp()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self._spec(stamp, acquired=stamp, transitions=0),
        }
        try:
            lease = self.objs.create(kinds.LEASE, body, namespace=self.namespace)
        except errors.AlreadyExists:
            return False  # another replica created it first
        self._won(lease, now)
        log.info("%s leads (new lease %s/%s)", self.identity, self.namespace, self.name)
        return True

    def _write(self, lease: objects.Json, *, taking_over: bool, now: float) -> bool:
        spec = lease.get("spec") or {}
        stamp = self._stamp()
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if taking_over else 0)
        acquired = stamp if taking_over else str(spec.get("acquireTime") or stamp)
        body = {**lease, "spec": self._spec(stamp, acquired=acquired, transitions=transitions)}
        if taking_over:
            self._renewed_at = None  # nothing to keep until this write wins
        written = self.objs.replace(kinds.LEASE, body, namespace=self.namespace)
        self._won(written, now)
        if taking_over:
            log.info("%s took over lease %s/%s", self.identity, self.namespace, self.name)
        return True

    # -- judgements on this replica's own clock ------------------------------------

    def _see(self, lease: objects.Json, now: float) -> None:
        spec = lease.get("spec") or {}
        version = (lease.get("metadata") or {}).get("resourceVersion")
        record = (spec.get("holderIdentity"), spec.get("renewTime"), version)
        if record != self._seen:
            self._seen, self._seen_at = record, now

    def _expired(self, lease: objects.Json, now: float) -> bool:
        duration = int((lease.get("spec") or {}).get("leaseDurationSeconds") or self.lease_seconds)
        return now - self._seen_at >= duration

    def _won(self, lease: objects.Json, now: float) -> None:
        self._see(lease, now)
        self._renewed_at = now

    def _leading(self, now: float) -> bool:
        if self._renewed_at is None or now - self._renewed_at >= self.renew_deadline:
            self._renewed_at = None
            return False
        return True

    def _spec(self, now: str, *, acquired: str, transitions: int) -> objects.Json:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "acquireTime": acquired,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def _stamp(self) -> str:
        return self.clock().strftime(_MICRO)
