"""In-cluster verification of a StorageClass, against the fake API server (a fake, not a cluster).

The fake has no CSI sidecars, so the tests play their part: they bind PVCs,
mark VolumeSnapshots ready and grow capacities between reconcile passes, and
check what the controller made, what it concluded and that it cleaned up.
"""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from csi_vm import errors
from csi_vm.controller import context, reconcile_report, storage, verify, verify_shared
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = "csi-vm"
PROBE = "csi-vm-probe-gp3"
SHARED = f"{PROBE}-shared"


@pytest.fixture
def cluster(fake: fakekube.FakeKube) -> fakekube.FakeKube:
    fake.add(*kubeobjects.typical_cluster())
    return fake


@pytest.fixture
def vctx(ctx: context.Context) -> context.Context:
    return dataclasses.replace(ctx, probe_namespace=NS)


def _pass(ctx: context.Context, sc: str) -> dict:  # type: ignore[type-arg]
    reconcile_report.reconcile_class(ctx, ctx.objs.get(kinds.STORAGE_CLASS, sc))
    return ctx.objs.get(kinds.REPORT, sc)


def _ask(fake: fakekube.FakeKube, ctx: context.Context, sc: str) -> None:
    _pass(ctx, sc)
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, "storagecapabilityreports")
    assert res is not None
    fake.store.patch(res, "", sc, {"spec": {"verify": True}})


def _set(fake: fakekube.FakeKube, group: str, plural: str, name: str, status: dict) -> None:  # type: ignore[type-arg]
    res = fake.store.resource(group, "v1", plural)
    assert res is not None
    fake.store.patch(res, NS, name, {"status": status}, subresource="status")


def _ran(fake: fakekube.FakeKube, pod: str, *, node: str, phase: str) -> None:
    """The scheduler and the kubelet's part: the Pod placed on ``node`` and ended so."""
    res = fake.store.resource("", "v1", "pods")
    assert res is not None
    fake.store.patch(res, NS, pod, {"spec": {"nodeName": node}})
    fake.store.patch(res, NS, pod, {"status": {"phase": phase}}, subresource="status")


def _exists(ctx: context.Context, res, name: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        ctx.objs.get(res, name, namespace=NS)
    except errors.NotFound:
        return False
    return True


def _requested(ctx: context.Context, name: str) -> str:
    return str(
        ctx.objs.get(kinds.PVC, name, namespace=NS)["spec"]["resources"]["requests"]["storage"]
    )


def test_a_class_is_verified_through_the_sidecars_then_cleaned_up(
    cluster: fakekube.FakeKube, vctx: context.Context
) -> None:
    _ask(cluster, vctx, "gp3")
    report = _pass(vctx, "gp3")
    assert report["status"]["verification"]["phase"] == "Running"
    assert _exists(vctx, kinds.POD, f"{PROBE}-holder")  # gp3 waits for a first consumer
    shared = vctx.objs.get(kinds.PVC, SHARED, namespace=NS)
    assert shared["spec"]["accessModes"] == ["ReadWriteMany"]
    assert not _exists(vctx, kinds.POD, f"{SHARED}-read")  # not before the write ended
    _ran(cluster, f"{SHARED}-write", node="node-a", phase="Succeeded")
    _pass(vctx, "gp3")
    reader = vctx.objs.get(kinds.POD, f"{SHARED}-read", namespace=NS)
    terms = reader["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["node-a"]
    _ran(cluster, f"{SHARED}-read", node="node-b", phase="Succeeded")
    _set(
        cluster,
        "",
        "persistentvolumeclaims",
        PROBE,
        {"phase": "Bound", "capacity": {"storage": "1Gi"}},
    )
    _pass(vctx, "gp3")
    clone = vctx.objs.get(kinds.PVC, f"{PROBE}-clone", namespace=NS)
    assert clone["spec"]["dataSource"] == {"kind": "PersistentVolumeClaim", "name": PROBE}
    _set(cluster, "snapshot.storage.k8s.io", "volumesnapshots", PROBE, {"readyToUse": True})
    _set(cluster, "", "persistentvolumeclaims", f"{PROBE}-clone", {"phase": "Bound"})
    _pass(vctx, "gp3")
    restore = vctx.objs.get(kinds.PVC, f"{PROBE}-restore", namespace=NS)
    assert restore["spec"]["dataSource"]["kind"] == "VolumeSnapshot"
    # Not grown while a clone or restore still needs the source's first size.
    assert _requested(vctx, PROBE) == "1Gi"
    _set(cluster, "", "persistentvolumeclaims", f"{PROBE}-restore", {"phase": "Bound"})
    _pass(vctx, "gp3")
    assert _requested(vctx, PROBE) == "2Gi"
    _set(
        cluster,
        "",
        "persistentvolumeclaims",
        PROBE,
        {"phase": "Bound", "capacity": {"storage": "2Gi"}},
    )
    status = _pass(vctx, "gp3")["status"]
    assert (status["verification"]["phase"], status["basis"]) == ("Done", "verified")
    for feature in ("snapshot", "restore_from_snapshot", "clone", "expansion_controller"):
        assert status["features"][feature]["verified"] is True, feature
    sharing = status["features"]["multi_node_shared"]
    assert sharing["verified"] is True
    assert sharing["evidence"].endswith("Block volume written on node-a and read back on node-b")
    assert status["plan"]["vm_clone"]["strategy"] == "csi-clone"
    for name in (PROBE, f"{PROBE}-clone", f"{PROBE}-restore"):
        assert not _exists(vctx, kinds.PVC, name)
        assert not _exists(vctx, kinds.POD, f"{name}-holder")
    assert not _exists(vctx, kinds.VOLUME_SNAPSHOT, PROBE)
    for pod in (f"{SHARED}-write", f"{SHARED}-read"):
        assert not _exists(vctx, kinds.POD, pod)
    assert not _exists(vctx, kinds.PVC, SHARED)
    again = _pass(vctx, "gp3")  # done for this spec: nothing is made again
    assert not _exists(vctx, kinds.PVC, PROBE)
    assert again["status"]["verification"]["phase"] == "Done"


def test_what_never_happens_is_verified_as_missing(
    cluster: fakekube.FakeKube, vctx: context.Context
) -> None:
    now = [datetime.datetime(2026, 11, 28, 10, 0, tzinfo=datetime.UTC)]
    ctx = dataclasses.replace(vctx, clock=lambda: now[0])
    _ask(cluster, ctx, "nfs-csi")
    _pass(ctx, "nfs-csi")
    assert not _exists(ctx, kinds.POD, "csi-vm-probe-nfs-csi-holder")  # Immediate binding
    now[0] += datetime.timedelta(seconds=verify.TIMEOUT + 1)
    status = _pass(ctx, "nfs-csi")["status"]
    assert status["verification"]["phase"] == "Done"
    assert status["features"]["clone"]["verified"] is False
    assert "never bound" in status["features"]["clone"]["evidence"]
    assert status["plan"]["vm_clone"]["strategy"] == "host-copy"


def test_nothing_is_made_unless_asked(cluster: fakekube.FakeKube, vctx: context.Context) -> None:
    status = _pass(vctx, "gp3")["status"]
    assert "verification" not in status
    assert not _exists(vctx, kinds.PVC, PROBE)


def test_a_new_verification_starts_its_own_clock(
    cluster: fakekube.FakeKube, vctx: context.Context
) -> None:
    # Asked again long after a first run, the new run is not late at once.
    now = [datetime.datetime(2026, 11, 28, 10, 0, tzinfo=datetime.UTC)]
    ctx = dataclasses.replace(vctx, clock=lambda: now[0])
    _ask(cluster, ctx, "nfs-csi")
    _pass(ctx, "nfs-csi")
    now[0] += datetime.timedelta(seconds=verify.TIMEOUT + 1)
    assert _pass(ctx, "nfs-csi")["status"]["verification"]["phase"] == "Done"
    now[0] += datetime.timedelta(hours=5)
    res = cluster.store.resource(kinds.GROUP, kinds.VERSION, "storagecapabilityreports")
    assert res is not None
    for verify_now in (False, True):
        cluster.store.patch(res, "", "nfs-csi", {"spec": {"verify": verify_now}})
    status = _pass(ctx, "nfs-csi")["status"]
    assert status["verification"]["phase"] == "Running"
    assert status["verification"]["startedAt"] == "2026-11-28T15:05:01Z"


def test_a_volume_pinned_to_its_node_is_not_shared_without_waiting(
    cluster: fakekube.FakeKube, vctx: context.Context
) -> None:
    _pass(vctx, "gp3")
    owner = storage.owner_of(vctx.objs.get(kinds.REPORT, "gp3"))
    sc = next(c for c in vctx.api.storage_classes() if c.name == "gp3")
    probe = verify.Probe(sc=sc, namespace=NS, owner=owner, image="csi-vm:test").shared
    never = verify_shared.result(vctx, probe, late=lambda what: None)
    assert never is None  # the write has not ended
    affinity = {"key": "topology.kubernetes.io/node", "operator": "In", "values": ["node-a"]}
    cluster.add(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "pv-pinned"},
            "spec": {
                "nodeAffinity": {
                    "required": {"nodeSelectorTerms": [{"matchExpressions": [affinity]}]}
                }
            },
        }
    )
    pvcs = cluster.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    cluster.store.patch(pvcs, NS, probe.claim.name, {"spec": {"volumeName": "pv-pinned"}})
    _ran(cluster, probe.writer, node="node-a", phase="Succeeded")
    assert verify_shared.result(vctx, probe, late=lambda what: None) is None
    pods = cluster.store.resource("", "v1", "pods")
    assert pods is not None
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/2 nodes are available: 1 node(s) had volume node affinity conflict",
    }
    cluster.store.patch(
        pods, NS, probe.reader, {"status": {"conditions": [unschedulable]}}, subresource="status"
    )
    found = verify_shared.result(vctx, probe, late=lambda what: None)
    assert found is not None
    assert found.verified is False
    assert "node affinity keeps it there" in found.evidence
