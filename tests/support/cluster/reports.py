"""StorageCapabilityReports of the test cluster: a class verified in the cluster on demand."""

from __future__ import annotations

from tests.support.cluster import kubectl


def verify(kube: kubectl.Kube, storage_class: str, *, timeout: float = 600) -> kubectl.Json:
    """``storage_class``'s report verified afresh (spec.verify); its status once Done.

    Off, then on: a new generation, so the running controller verifies again
    instead of keeping a verdict an earlier image reached.
    """
    for value in ("false", "true"):
        kube.run(
            "patch",
            "storagecapabilityreport",
            storage_class,
            "--type=merge",
            "-p",
            f'{{"spec":{{"verify":{value}}}}}',
        )

    def done() -> kubectl.Json | None:
        report = kube.get("storagecapabilityreport", storage_class)
        status: kubectl.Json = report.get("status") or {}
        verification = status.get("verification") or {}
        current = verification.get("generation") == report["metadata"]["generation"]
        finished = current and verification.get("phase") == "Done"
        return status if finished and status.get("basis") == "verified" else None

    found: kubectl.Json = kube.wait_for(
        f"verification of {storage_class}",
        done,
        timeout=timeout,
        explain=lambda: kube.run("get", "pvc,pods", "-A", check=False).stdout,
    )
    return found
