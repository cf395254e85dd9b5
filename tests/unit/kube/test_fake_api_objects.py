"""Generic object access through the client's own methods, against the fake API server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from csi_vm import errors
from csi_vm.kube import api as kube_api
from csi_vm.kube import errors as kube_errors
from csi_vm.kube import objects
from tests.support import fakekube, fakekube_routes
from tests.support.fakekube_store import Resource

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

NS = "vms"
PVC = objects.Resource(group="", version="v1", plural="persistentvolumeclaims")
NODE = objects.Resource(group="", version="v1", plural="nodes", namespaced=False)
LEASE = objects.Resource(group="coordination.k8s.io", version="v1", plural="leases")
SNAPSHOT = objects.Resource(group="snapshot.storage.k8s.io", version="v1", plural="volumesnapshots")
CLASS = objects.Resource(
    group="snapshot.storage.k8s.io", version="v1", plural="volumesnapshotclasses", namespaced=False
)


@pytest.fixture
def objs(fake: fakekube.FakeKube, api: kube_api.Api) -> Iterator[objects.Objects]:
    fake.store.register(Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True))
    yield objects.Objects(api)


def _claim(name: str, *, namespace: str = NS) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _owner(name: str) -> dict:  # type: ignore[type-arg]
    return {"apiVersion": "csi-vm.io/v1alpha1", "kind": "CsiVM", "name": name, "uid": f"uid-{name}"}


def test_fake_api_core_objects_round_trip(objs: objects.Objects) -> None:
    objs.create(PVC, _claim("a"), namespace=NS)
    objs.create(PVC, _claim("b", namespace="other"), namespace="other")
    items, version = objs.list(PVC)  # every namespace
    assert sorted(i["metadata"]["name"] for i in items) == ["a", "b"]
    assert int(version) > 0
    assert [i["metadata"]["name"] for i in objs.list(PVC, namespace=NS)[0]] == ["a"]
    got = objs.get(PVC, "a", namespace=NS)
    assert got["spec"]["resources"]["requests"]["storage"] == "1Gi"
    objs.delete(PVC, "a", namespace=NS)
    objs.delete(PVC, "a", namespace=NS)  # already gone is what delete wants
    with pytest.raises(errors.NotFound):
        objs.get(PVC, "a", namespace=NS)
    with pytest.raises(errors.NotFound):
        objs.get(NODE, "no-such-node")


def test_fake_api_patches_are_merge_patches_for_core_kinds_too(
    fake: fakekube.FakeKube, objs: objects.Objects
) -> None:
    """A list in a patch replaces the list (RFC 7386), never merges by key as SMP would."""
    claim = _claim("a")
    claim["metadata"]["ownerReferences"] = [_owner("restore")]
    objs.create(PVC, claim, namespace=NS)
    adopted = objs.patch(PVC, "a", {"metadata": {"ownerReferences": [_owner("vm")]}}, namespace=NS)
    assert [o["name"] for o in adopted["metadata"]["ownerReferences"]] == ["vm"]
    patches = [r for r in fake.requests if r.method == "PATCH"]
    assert [r.content_type for r in patches] == ["application/merge-patch+json"]


def test_fake_api_custom_objects_and_their_status(objs: objects.Objects) -> None:
    body = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "s1"},
        "spec": {"source": {"persistentVolumeClaimName": "a"}},
    }
    objs.create(SNAPSHOT, body, namespace=NS)
    objs.patch(SNAPSHOT, "s1", {"status": {"readyToUse": True}}, namespace=NS, subresource="status")
    assert objs.get(SNAPSHOT, "s1", namespace=NS)["status"] == {"readyToUse": True}
    assert [i["metadata"]["name"] for i in objs.list(SNAPSHOT)[0]] == ["s1"]
    assert {c["metadata"]["name"] for c in objs.list(CLASS)[0]} >= {"ebs-csi-snapclass"}


def test_fake_api_a_guarded_patch_of_a_stale_object_conflicts_once(
    fake: fakekube.FakeKube, objs: objects.Objects
) -> None:
    created = objs.create(PVC, _claim("a"), namespace=NS)
    objs.patch(PVC, "a", {"metadata": {"labels": {"x": "1"}}}, namespace=NS)
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    before = len(fake.requests)
    with pytest.raises(errors.Busy, match="HTTP 409"):
        objs.patch(PVC, "a", {**stale, "spec": {"volumeName": "pv"}}, namespace=NS)
    assert len(fake.requests) == before + 1  # a blind repeat could not succeed: not sent


def test_fake_api_lease_times_reach_the_server_as_written(objs: objects.Objects) -> None:
    """MicroTime "…00.000000Z": a typed client model would resend it as "…00+00:00"."""
    when = "2026-11-28T10:00:00.000000Z"
    body = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l", "namespace": NS},
        "spec": {"holderIdentity": "a", "acquireTime": when, "renewTime": when},
    }
    created = objs.create(LEASE, body, namespace=NS)
    assert created["spec"]["renewTime"] == when
    created["spec"]["holderIdentity"] = "b"
    replaced = objs.replace(LEASE, created, namespace=NS)
    assert (replaced["spec"]["holderIdentity"], replaced["spec"]["renewTime"]) == ("b", when)


def test_fake_api_watch_streams_changes_and_bookmarks(objs: objects.Objects) -> None:
    _, since = objs.list(PVC, namespace=NS)
    objs.create(PVC, _claim("a"), namespace=NS)
    objs.patch(PVC, "a", {"metadata": {"labels": {"x": "1"}}}, namespace=NS)
    objs.delete(PVC, "a", namespace=NS)
    # The bookmark comes 2 s before the end, as the real server sends it.
    events = list(objs.watch(PVC, namespace=NS, since=since, timeout=3, bookmarks=True))
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED", objects.BOOKMARK]
    assert int(events[-1].version) >= int(events[-2].version) > int(since)
    # Nor for a watch too short for that, nor for one that did not ask.
    short = list(objs.watch(PVC, namespace=NS, since=since, timeout=1, bookmarks=True))
    plain = list(objs.watch(PVC, namespace=NS, since=since, timeout=1))
    assert [e.type for e in short] == [e.type for e in plain] == ["ADDED", "MODIFIED", "DELETED"]


def test_fake_api_watch_opens_through_the_door(
    fake: fakekube.FakeKube, objs: objects.Objects
) -> None:
    _, since = objs.list(PVC, namespace=NS)
    objs.create(PVC, _claim("a"), namespace=NS)
    fake.fail_next(503, plural="persistentvolumeclaims")
    events = list(objs.watch(PVC, namespace=NS, since=since, timeout=1))
    assert [e.type for e in events] == ["ADDED"]  # retried after the 503
    watches = [r for r in fake.requests if fakekube_routes.flag(r.query, "watch")]
    assert len(watches) == 2


def test_fake_api_watch_from_compacted_history_is_expired(
    fake: fakekube.FakeKube, objs: objects.Objects
) -> None:
    _, since = objs.list(PVC, namespace=NS)
    objs.create(PVC, _claim("a"), namespace=NS)
    fake.store.compact()
    with pytest.raises(kube_errors.Expired, match="HTTP 410") as info:
        list(objs.watch(PVC, namespace=NS, since=since, timeout=1))
    assert isinstance(info.value, errors.Rejected)
    assert "too old resource version" in info.value.message
