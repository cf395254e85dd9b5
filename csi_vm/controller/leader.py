"""Leader election through a coordination.k8s.io Lease.

The API server's optimistic concurrency is the whole consensus: every write
of the Lease carries the resourceVersion that was read, so of two replicas
racing for an expired Lease exactly one write succeeds and the other gets a
409 Conflict (`errors.Busy`). Durations follow client-go's defaults
(15 s lease, renew every 2 s, as kube-controller-manager uses).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable

from csi_vm import errors
from csi_vm.controller import kinds
from csi_vm.kube import objects

log = logging.getLogger("csi_vm.controller.leader")

LEASE_SECONDS = 15
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
    clock: Callable[[], datetime.datetime] = _utc_now

    def try_acquire(self) -> bool:
        """Take or renew the Lease; True while this replica leads."""
        try:
            lease = self.objs.get(kinds.LEASE, self.name, namespace=self.namespace)
        except errors.NotFound:
            return self._create()
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if holder != self.identity and not self._expired(spec):
            return False
        return self._write(lease, taking_over=holder != self.identity)

    def release(self) -> None:
        """Give the Lease up on shutdown so another replica need not wait it out."""
        try:
            lease = self.objs.get(kinds.LEASE, self.name, namespace=self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["holderIdentity"] = None
                self.objs.replace(kinds.LEASE, lease, namespace=self.namespace)
        except (errors.NotFound, errors.Transient) as err:
            log.info("lease %s not released: %s", self.name, err)

    def _create(self) -> bool:
        now = self._now()
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self._spec(now, acquired=now, transitions=0),
        }
        try:
            self.objs.create(kinds.LEASE, body, namespace=self.namespace)
        except errors.AlreadyExists:
            return False  # another replica created it first
        log.info("%s leads (new lease %s/%s)", self.identity, self.namespace, self.name)
        return True

    def _write(self, lease: objects.Json, *, taking_over: bool) -> bool:
        spec = lease.get("spec") or {}
        now = self._now()
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if taking_over else 0)
        acquired = now if taking_over else str(spec.get("acquireTime") or now)
        lease["spec"] = self._spec(now, acquired=acquired, transitions=transitions)
        try:
            self.objs.replace(kinds.LEASE, lease, namespace=self.namespace)
        except errors.Busy:
            return False  # someone wrote since we read: they lead
        if taking_over:
            log.info("%s took over lease %s/%s", self.identity, self.namespace, self.name)
        return True

    def _spec(self, now: str, *, acquired: str, transitions: int) -> objects.Json:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "acquireTime": acquired,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    def _expired(self, spec: objects.Json) -> bool:
        if not spec.get("holderIdentity"):
            return True  # released
        renewed = spec.get("renewTime")
        if not renewed:
            return True
        when = datetime.datetime.strptime(str(renewed), _MICRO).replace(tzinfo=datetime.UTC)
        duration = int(spec.get("leaseDurationSeconds") or self.lease_seconds)
        return self.clock() > when + datetime.timedelta(seconds=duration)

    def _now(self) -> str:
        return self.clock().strftime(_MICRO)
