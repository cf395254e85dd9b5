"""The fake API server itself, driven by the real kubernetes client.

Later controller tests rely on it behaving like the real server in the ways
that matter to a controller: resourceVersions, watches, conflicts,
finalizers, discovery. These tests pin that down.
"""

from __future__ import annotations

import json
import pathlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from csi_vm.kube import kubeconfig
from tests.support import fakekube, kubeobjects

pytestmark = pytest.mark.fake

SNAP = ("snapshot.storage.k8s.io", "v1")


@pytest.fixture
def client(fake: fakekube.FakeKube, tmp_path: pathlib.Path) -> Iterator[k8s.ApiClient]:
    cfg = kubeconfig.load(kubeconfig=fake.kubeconfig(tmp_path / "kubeconfig"))
    with k8s.ApiClient(cfg) as api_client:
        yield api_client


def test_fake_api_discovery(client: k8s.ApiClient) -> None:
    groups = k8s.ApisApi(client).get_api_versions()
    names = {g.name for g in groups.groups}
    assert {"storage.k8s.io", "snapshot.storage.k8s.io"} <= names
    resources = k8s.StorageV1Api(client).get_api_resources()
    assert {"storageclasses", "csidrivers", "csinodes"} <= {r.name for r in resources.resources}
    assert k8s.CoreApi(client).get_api_versions().versions == ["v1"]


def test_fake_api_typed_client_deserializes_objects(client: k8s.ApiClient) -> None:
    gp3 = k8s.StorageV1Api(client).read_storage_class("gp3")
    assert gp3.provisioner == kubeobjects.EBS
    assert gp3.allow_volume_expansion is True
    assert int(gp3.metadata.resource_version) > 0


def test_fake_api_resource_versions_increase(client: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(client)
    first = core.create_namespace({"metadata": {"name": "vms"}})
    patched = core.patch_namespace("vms", {"metadata": {"labels": {"team": "storage"}}})
    assert int(patched.metadata.resource_version) > int(first.metadata.resource_version)
    assert patched.metadata.labels == {"team": "storage"}
    listed = core.list_namespace(label_selector="team=storage")
    assert [n.metadata.name for n in listed.items] == ["vms"]
    assert int(listed.metadata.resource_version) >= int(patched.metadata.resource_version)


def test_fake_api_create_twice_and_stale_update_conflict(client: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(client)
    created = core.create_namespace({"metadata": {"name": "vms"}})
    with pytest.raises(k8s.ApiException) as exists:
        core.create_namespace({"metadata": {"name": "vms"}})
    assert (exists.value.status, "AlreadyExists") == (409, _reason(exists.value))
    core.patch_namespace("vms", {"metadata": {"labels": {"a": "1"}}})
    stale = {"metadata": {"name": "vms", "resourceVersion": created.metadata.resource_version}}
    with pytest.raises(k8s.ApiException) as conflict:
        core.replace_namespace("vms", stale)
    assert (conflict.value.status, "Conflict") == (409, _reason(conflict.value))


def test_fake_api_missing_object_is_404_status(client: k8s.ApiClient) -> None:
    with pytest.raises(k8s.ApiException) as info:
        k8s.StorageV1Api(client).read_csi_driver("no.such.driver")
    assert info.value.status == 404
    assert _reason(info.value) == "NotFound"


def test_fake_api_finalizers_delay_deletion(client: k8s.ApiClient) -> None:
    custom = k8s.CustomObjectsApi(client)
    body = kubeobjects.snapshot_class("held", kubeobjects.EBS)
    body["metadata"]["finalizers"] = ["csi-vm.io/protect"]
    custom.create_cluster_custom_object(*SNAP, "volumesnapshotclasses", body)
    custom.delete_cluster_custom_object(*SNAP, "volumesnapshotclasses", "held")
    held = custom.get_cluster_custom_object(*SNAP, "volumesnapshotclasses", "held")
    assert "deletionTimestamp" in held["metadata"]
    custom.patch_cluster_custom_object(
        *SNAP, "volumesnapshotclasses", "held", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(k8s.ApiException) as gone:
        custom.get_cluster_custom_object(*SNAP, "volumesnapshotclasses", "held")
    assert gone.value.status == 404


def test_fake_api_status_subresource_patches_only_status(client: k8s.ApiClient) -> None:
    custom = k8s.CustomObjectsApi(client)
    body: dict[str, Any] = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "disk-0-snap"},
        "spec": {"source": {"persistentVolumeClaimName": "disk-0"}},
    }
    custom.create_namespaced_custom_object(*SNAP, "vms", "volumesnapshots", body)
    custom.patch_namespaced_custom_object_status(
        *SNAP,
        "vms",
        "volumesnapshots",
        "disk-0-snap",
        {"status": {"readyToUse": True}, "spec": {"source": {"persistentVolumeClaimName": "x"}}},
    )
    got = custom.get_namespaced_custom_object(*SNAP, "vms", "volumesnapshots", "disk-0-snap")
    assert got["status"] == {"readyToUse": True}
    assert got["spec"]["source"]["persistentVolumeClaimName"] == "disk-0"


def test_fake_api_watch_streams_changes_in_order(
    fake: fakekube.FakeKube, client: k8s.ApiClient
) -> None:
    storage = k8s.StorageV1Api(client)
    since = storage.list_storage_class().metadata.resource_version
    seen: list[tuple[str, str]] = []
    watcher = threading.Thread(target=_collect, args=(storage, since, seen, 3))
    watcher.start()
    # No wait for the watch to connect: it starts from `since`, so changes made
    # before it is established are replayed, as the real server does.
    fake.add(kubeobjects.storage_class("fast", kubeobjects.EBS))
    storage.patch_storage_class("fast", {"metadata": {"labels": {"tier": "1"}}})
    storage.delete_storage_class("fast")
    watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert seen == [("ADDED", "fast"), ("MODIFIED", "fast"), ("DELETED", "fast")]


def test_fake_api_watch_without_version_starts_with_current_objects(
    client: k8s.ApiClient,
) -> None:
    stream = k8s_watch.Watch().stream(k8s.StorageV1Api(client).list_csi_driver, timeout_seconds=1)
    events = [(e["type"], e["object"].metadata.name) for e in stream]
    assert events == [
        ("ADDED", kubeobjects.CSI_VM_LOCAL),
        ("ADDED", kubeobjects.EBS),
        ("ADDED", kubeobjects.NFS),
    ]


def test_fake_api_watch_from_compacted_version_is_gone(
    fake: fakekube.FakeKube, client: k8s.ApiClient
) -> None:
    fake.add(kubeobjects.storage_class("later", kubeobjects.EBS))
    fake.store.compact()
    stream = k8s_watch.Watch().stream(
        k8s.StorageV1Api(client).list_storage_class, resource_version="1", timeout_seconds=1
    )
    with pytest.raises(k8s.ApiException) as info:
        list(stream)
    assert info.value.status == 410


def _collect(
    storage: k8s.StorageV1Api, since: str, seen: list[tuple[str, str]], count: int
) -> None:
    watch = k8s_watch.Watch()
    for event in watch.stream(
        storage.list_storage_class, resource_version=since, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == count:
            watch.stop()


def _reason(err: k8s.ApiException) -> str:
    return str(json.loads(err.body)["reason"])


def test_fake_api_stale_merge_patch_conflicts_as_the_real_server(client: k8s.ApiClient) -> None:
    """A resourceVersion in a merge patch is a precondition, for an object and its status."""
    custom = k8s.CustomObjectsApi(client)
    body = {"metadata": {"name": "s1"}, "spec": {"source": {"persistentVolumeClaimName": "d"}}}
    created = custom.create_namespaced_custom_object(*SNAP, "vms", "volumesnapshots", body)
    first = created["metadata"]["resourceVersion"]
    fresh = custom.patch_namespaced_custom_object_status(
        *SNAP, "vms", "volumesnapshots", "s1",
        {"metadata": {"resourceVersion": first}, "status": {"readyToUse": False}},
    )  # fmt: skip
    for patch in (
        lambda b: custom.patch_namespaced_custom_object_status(
            *SNAP, "vms", "volumesnapshots", "s1", b
        ),
        lambda b: custom.patch_namespaced_custom_object(*SNAP, "vms", "volumesnapshots", "s1", b),
    ):
        with pytest.raises(k8s.ApiException) as stale:
            patch({"metadata": {"resourceVersion": first}, "status": {"readyToUse": True}})
        assert (stale.value.status, _reason(stale.value)) == (409, "Conflict")
    got = custom.get_namespaced_custom_object(*SNAP, "vms", "volumesnapshots", "s1")
    assert got["status"] == {"readyToUse": False}
    assert got["metadata"]["resourceVersion"] == fresh["metadata"]["resourceVersion"]


def test_fake_api_status_put_replaces_only_status(client: k8s.ApiClient) -> None:
    custom = k8s.CustomObjectsApi(client)
    body = {"metadata": {"name": "s2"}, "spec": {"source": {"persistentVolumeClaimName": "d"}}}
    created = custom.create_namespaced_custom_object(*SNAP, "vms", "volumesnapshots", body)
    created["spec"]["source"]["persistentVolumeClaimName"] = "other"
    created["status"] = {"readyToUse": True}
    custom.replace_namespaced_custom_object_status(*SNAP, "vms", "volumesnapshots", "s2", created)
    got = custom.get_namespaced_custom_object(*SNAP, "vms", "volumesnapshots", "s2")
    assert got["status"] == {"readyToUse": True}
    assert got["spec"]["source"]["persistentVolumeClaimName"] == "d"


def test_fake_api_watch_that_asked_for_bookmarks_gets_one_before_it_ends(
    fake: fakekube.FakeKube, client: k8s.ApiClient
) -> None:
    storage = k8s.StorageV1Api(client)
    since = storage.list_storage_class().metadata.resource_version
    fake.add(kubeobjects.csi_driver("late.csi.example.com"))  # another kind moves the version
    stream = k8s_watch.Watch().stream(
        storage.list_storage_class,
        resource_version=since,
        timeout_seconds=3,  # longer than the 2 s before its end when the bookmark comes
        allow_watch_bookmarks=True,
    )
    events = [(e["type"], e["raw_object"]) for e in stream]
    assert [kind for kind, _ in events] == ["BOOKMARK"]
    version = events[0][1]["metadata"]["resourceVersion"]
    assert int(version) == fake.store.resource_version > int(since)


@pytest.mark.parametrize(
    ("value", "code"),
    [("true", 200), ("True", 200), ("1", 200), ("maybe", 400)],
    ids=["true", "True", "1", "not-a-bool"],
)
def test_fake_api_reads_booleans_as_the_real_server(
    fake: fakekube.FakeKube, value: str, code: int
) -> None:
    url = f"{fake.url}/apis/storage.k8s.io/v1/csidrivers?watch={value}&timeoutSeconds=1"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {fake.token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            first = json.loads(answer.readline())
            assert (answer.status, first["type"]) == (code, "ADDED")  # a watch, not a list
    except urllib.error.HTTPError as err:
        assert err.code == code


def test_fake_api_list_pages_come_from_the_first_pages_version(
    fake: fakekube.FakeKube, client: k8s.ApiClient
) -> None:
    """As the real server's (the contract test checks that); a compacted version is gone."""
    storage = k8s.StorageV1Api(client)
    first = storage.list_csi_driver(limit=1)
    fake.add(kubeobjects.csi_driver("zz.csi.example.com"))  # after the first page: not listed
    rest = storage.list_csi_driver(limit=10, _continue=first.metadata._continue)
    names = [d.metadata.name for d in first.items + rest.items]
    assert names == sorted({kubeobjects.CSI_VM_LOCAL, kubeobjects.EBS, kubeobjects.NFS})
    assert rest.metadata.resource_version == first.metadata.resource_version
    fake.store.compact()
    with pytest.raises(k8s.ApiException) as gone:
        storage.list_csi_driver(limit=1, _continue=first.metadata._continue)
    assert (gone.value.status, _reason(gone.value)) == (410, "Expired")
