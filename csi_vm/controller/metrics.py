"""Prometheus metrics of the controller, served on /metrics by `run`.

One registry per controller (not the client's global one), so tests and
several controllers in one process do not share counters.
"""

from __future__ import annotations

import prometheus_client as prom

from capabilities import model


class Metrics:
    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry()
        self.operations = prom.Counter(
            "csi_vm_operations",
            "VM storage operations, by operation, strategy and result.",
            ["operation", "strategy", "result"],
            registry=self.registry,
        )
        self.duration = prom.Histogram(
            "csi_vm_operation_duration_seconds",
            "Time from a resource's creation to its final state.",
            ["operation", "strategy"],
            registry=self.registry,
            # Native snapshots take seconds, host copies of large disks hours.
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, float("inf")),
        )
        self.feature = prom.Gauge(
            "csi_vm_storage_feature",
            "1 if a StorageClass's driver offers a feature, 0 if not, by how it is known.",
            ["storage_class", "feature", "basis"],
            registry=self.registry,
        )
        self.reconciles = prom.Counter(
            "csi_vm_reconciles",
            "Reconcile calls, by kind and result.",
            ["kind", "result"],
            registry=self.registry,
        )

    def operation(self, *, operation: str, strategy: str, result: str, seconds: float) -> None:
        self.operations.labels(operation, strategy, result).inc()
        self.duration.labels(operation, strategy).observe(seconds)

    def features(
        self, storage_class: str, features: dict[model.Feature, model.FeatureResult]
    ) -> None:
        for feature, result in features.items():
            verified = result.verified is not None
            value = result.verified if verified else result.declared
            if value is None:
                continue
            basis = "verified" if verified else "declared"
            self.feature.labels(storage_class, str(feature), basis).set(1 if value else 0)

    def exposition(self) -> bytes:
        return prom.generate_latest(self.registry)
