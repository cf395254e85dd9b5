"""CSI secrets on the Kubernetes path, against the fake API server (a fake, not a cluster).

In a cluster the CSI sidecars hand secrets to the driver: the StorageClass
and VolumeSnapshotClass name a Secret (csi.storage.k8s.io/*-secret-name and
-namespace) and the sidecar reads it. The controller must make its objects
so that those classes apply (PVCs on the disk's class, VolumeSnapshots on
the driver's class that names the snapshotter secret) and must never read a
Secret or carry a secret value anywhere. A Secret holding a canary value
exists, every class references it, and the controller reconciles reports
(with in-cluster verification), snapshots, restores, clones and expansions,
native and fallback; then the logs, events, statuses, every object in the
fake store but the Secret, the metrics and the API requests are searched.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import uuid
from typing import Any

import pytest

from csi_vm.controller import context, rbac, reconcile_report, run
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects
from tests.support import vmobjects as v
from tests.support.fakekube_store import Resource

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS
DRIVER = "example.csi"
SECRET = "vm-storage-creds"
SECRET_NS = "storage-secrets"
SNAP_CLASS = "example-snaps"
PROBE_NS = "csi-vm"

#: every secret reference the external sidecars read from a StorageClass
_SC_ROLES = ("provisioner", "controller-publish", "node-stage", "node-publish", "controller-expand")


def _refs(roles: tuple[str, ...]) -> dict[str, str]:
    refs = {}
    for role in roles:
        refs[f"csi.storage.k8s.io/{role}-secret-name"] = SECRET
        refs[f"csi.storage.k8s.io/{role}-secret-namespace"] = SECRET_NS
    return refs


def _cluster(canary: str) -> list[dict[str, Any]]:
    """Three classes of one driver (native, snapshots only, nothing) and its snapshot class.

    The snapshot class is not marked default, as in many installs: a
    VolumeSnapshot naming no class would be refused by the snapshot controller.
    """
    data = {"password": base64.b64encode(canary.encode()).decode()}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": SECRET_NS},
        "type": "Opaque",
        "data": data,
    }
    classes = [
        kubeobjects.storage_class(name, DRIVER, parameters=_refs(_SC_ROLES), expansion=True)
        for name in ("fast", "snaponly", "basic")
    ]
    # Some drivers take a credential as a plain class parameter: the reports
    # and logs must hide that value too.
    classes[0]["parameters"]["encryptionPassphrase"] = canary
    snap_class = kubeobjects.snapshot_class(SNAP_CLASS, DRIVER)
    snap_class["parameters"] = _refs(("snapshotter", "snapshotter-list"))
    other = kubeobjects.snapshot_class("other-default", "other.csi", default=True)
    return [
        secret,
        *classes,
        snap_class,
        other,
        kubeobjects.csi_driver(DRIVER),
        v.report("fast", v.NATIVE),
        v.report("snaponly", v.SNAPSHOT_ONLY),
        v.report("basic", v.BASIC),
    ]


def _res(fake: fakekube.FakeKube, group: str, plural: str) -> Resource:
    res = fake.store.resource(group, kinds.VERSION if group == kinds.GROUP else "v1", plural)
    assert res is not None, plural
    return res


def _set(
    fake: fakekube.FakeKube, group: str, plural: str, name: str, status: dict[str, Any]
) -> None:
    ns = PROBE_NS if name.startswith("csi-vm-probe") else NS
    fake.store.patch(_res(fake, group, plural), ns, name, {"status": status}, subresource="status")


def _bind(fake: fakekube.FakeKube, name: str, size: str = "1Gi") -> None:
    _set(
        fake, "", "persistentvolumeclaims", name, {"phase": "Bound", "capacity": {"storage": size}}
    )


def _ready(fake: fakekube.FakeKube, name: str) -> None:
    _set(fake, "snapshot.storage.k8s.io", "volumesnapshots", name, {"readyToUse": True})


def _done(fake: fakekube.FakeKube, name: str) -> None:
    _set(fake, "batch", "jobs", name, {"succeeded": 1})


def _pass(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    ns = NS if res.namespaced else ""
    run.reconcile(ctx, res, ctx.objs.get(res, name, namespace=ns))
    return ctx.objs.get(res, name, namespace=ns)


def _vms(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    for sc in ("fast", "snaponly", "basic"):
        fake.add(v.vm(f"web-{sc}", sc=sc))
        _pass(ctx, kinds.VM, f"web-{sc}")
        _bind(fake, f"web-{sc}-root")
        assert _pass(ctx, kinds.VM, f"web-{sc}")["status"]["phase"] == "Stopped"


def _snapshots_and_restores(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.snapshot("s-fast", vm_name="web-fast"), v.snapshot("s-basic", vm_name="web-basic"))
    _pass(ctx, kinds.SNAPSHOT, "s-fast")
    _pass(ctx, kinds.SNAPSHOT, "s-basic")
    vs = ctx.objs.get(kinds.VOLUME_SNAPSHOT, "s-fast-root", namespace=NS)
    assert vs["spec"]["volumeSnapshotClassName"] == SNAP_CLASS
    _ready(fake, "s-fast-root")
    _done(fake, "s-basic-root-copy")
    _bind(fake, "s-basic-root")
    for snap in ("s-fast", "s-basic"):
        assert _pass(ctx, kinds.SNAPSHOT, snap)["status"]["phase"] == "Ready", snap
    fake.add(
        v.restore("r-fast", snapshot_name="s-fast", target="web-r-fast"),
        v.restore("r-basic", snapshot_name="s-basic", target="web-r-basic"),
    )
    _pass(ctx, kinds.RESTORE, "r-fast")
    _pass(ctx, kinds.RESTORE, "r-basic")
    _bind(fake, "web-r-fast-root")
    _bind(fake, "web-r-basic-root")
    _done(fake, "web-r-basic-root-copy")
    for restore in ("r-fast", "r-basic"):
        assert _pass(ctx, kinds.RESTORE, restore)["status"]["phase"] == "Ready", restore


def _clones(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    for sc in ("fast", "snaponly", "basic"):
        fake.add(v.clone(f"c-{sc}", source=f"web-{sc}", target=f"copy-{sc}"))
        _pass(ctx, kinds.CLONE, f"c-{sc}")
    # the snapshot-restore rung's temporary snapshot needs the snapshotter secret too
    tmp = ctx.objs.get(kinds.VOLUME_SNAPSHOT, "copy-snaponly-root-tmp", namespace=NS)
    assert tmp["spec"]["volumeSnapshotClassName"] == SNAP_CLASS
    _ready(fake, "copy-snaponly-root-tmp")
    _pass(ctx, kinds.CLONE, "c-snaponly")
    _done(fake, "copy-basic-root-copy")
    for sc in ("fast", "snaponly", "basic"):
        _bind(fake, f"copy-{sc}-root")
        assert _pass(ctx, kinds.CLONE, f"c-{sc}")["status"]["phase"] == "Ready", sc


def _expansions(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    for sc, strategy in (("fast", "csi-expand"), ("basic", "copy-to-larger")):
        disks = [{"name": "root", "size": "2Gi", "storageClassName": sc}]
        ctx.objs.patch(kinds.VM, f"web-{sc}", {"spec": {"disks": disks}}, namespace=NS)
        vm = _pass(ctx, kinds.VM, f"web-{sc}")
        assert vm["status"]["disks"][0]["resize"]["strategy"] == strategy
    _pass(ctx, kinds.VM, "web-basic")  # the copy, decided on the pass before, starts
    _done(fake, "web-basic-root-2gi-copy")
    _bind(fake, "web-basic-root-2gi", "2Gi")
    _pass(ctx, kinds.VM, "web-basic")
    assert (
        _pass(ctx, kinds.VM, "web-basic")["spec"]["disks"][0]["claimName"] == "web-basic-root-2gi"
    )


def _reports_with_verification(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    """Every class's report, and an in-cluster verification of one (its probe objects too)."""
    vctx = dataclasses.replace(ctx, probe_namespace=PROBE_NS)
    fake.store.patch(_res(fake, kinds.GROUP, "storagecapabilityreports"), "", "fast",
                     {"spec": {"verify": True}})  # fmt: skip
    for sc in ("fast", "snaponly", "basic"):
        reconcile_report.reconcile_class(vctx, vctx.objs.get(kinds.STORAGE_CLASS, sc))
    probe = "csi-vm-probe-fast"
    _bind(fake, probe)
    reconcile_report.reconcile_class(vctx, vctx.objs.get(kinds.STORAGE_CLASS, "fast"))
    vs = vctx.objs.get(kinds.VOLUME_SNAPSHOT, probe, namespace=PROBE_NS)
    assert vs["spec"]["volumeSnapshotClassName"] == SNAP_CLASS


def _everything_but_the_secret(fake: fakekube.FakeKube) -> list[str]:
    texts = []
    for res in fake.store.resources():
        if res.plural in ("secrets", "storageclasses"):  # where the canary was put
            continue
        for obj in fake.store.list_objects(res)[0]:
            texts.append(json.dumps(obj))
    return texts


def test_fake_api_canary_secret_reaches_no_output(
    fake: fakekube.FakeKube, ctx: context.Context, caplog: pytest.LogCaptureFixture
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    fake.store.register(Resource("", "v1", "secrets", "Secret", namespaced=True))
    fake.add(*_cluster(canary))

    _vms(fake, ctx)
    _snapshots_and_restores(fake, ctx)
    _clones(fake, ctx)
    _expansions(fake, ctx)
    _reports_with_verification(fake, ctx)

    # The PVCs the controller made stay on the disk's class, whose
    # provisioner-, node-stage- and controller-expand-secret keys the sidecars read.
    pvcs = fake.store.list_objects(_res(fake, "", "persistentvolumeclaims"))[0]
    made = {p["metadata"]["name"]: p["spec"]["storageClassName"] for p in pvcs}
    assert made["copy-basic-root"] == "basic" and made["web-basic-root-2gi"] == "basic"
    assert made["web-r-fast-root"] == "fast" and made["copy-snaponly-root"] == "snaponly"

    texts = _everything_but_the_secret(fake)
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    texts.append(ctx.metrics.exposition().decode())
    texts += [json.dumps(dataclasses.astuple(r)) for r in fake.requests]
    found = [t[:200] for t in texts if canary in t]
    assert found == []
    # Not even read: no request touched a Secret, and RBAC grants none.
    assert not [r for r in fake.requests if "/secrets" in r.path]
    assert not [rule for rule in rbac.CONTROLLER if rule.resource == "secrets"]
    # The references themselves stay readable in the report: they are names, not secrets.
    report = ctx.objs.get(kinds.REPORT, "fast")
    assert canary not in json.dumps(report)
