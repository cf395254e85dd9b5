"""Reading storage objects into typed models, against the fake API server."""

from __future__ import annotations

import logging
import pathlib

import pydantic
import pytest

from csi_vm.kube import api as kube_api
from csi_vm.kube import models
from tests.support import fakekube, kubeobjects

from .conftest import QUICK

pytestmark = pytest.mark.fake

K = kubeobjects


def test_fake_api_csi_drivers_become_typed_models(api: kube_api.Api) -> None:
    drivers = {d.name: d for d in api.csi_drivers()}
    assert set(drivers) == {K.EBS, K.NFS, K.CSI_VM_LOCAL}
    assert drivers[K.EBS] == models.CSIDriverInfo(
        name=K.EBS,
        attach_required=True,
        pod_info_on_mount=False,
        volume_lifecycle_modes=("Persistent",),
        fs_group_policy="ReadWriteOnceWithFSType",
        storage_capacity=False,
        requires_republish=False,
        se_linux_mount=True,
    )
    assert drivers[K.NFS].attach_required is False
    assert drivers[K.CSI_VM_LOCAL].storage_capacity is True


def test_fake_api_storage_classes(api: kube_api.Api) -> None:
    classes = {c.name: c for c in api.storage_classes()}
    assert set(classes) == {"gp3", "nfs-csi", "local-path", "csi-vm-local"}
    gp3 = classes["gp3"]
    assert (gp3.provisioner, gp3.allow_volume_expansion, gp3.is_default) == (K.EBS, True, True)
    assert gp3.volume_binding_mode == "WaitForFirstConsumer"
    assert gp3.parameters["type"] == "gp3"
    nfs = classes["nfs-csi"]
    assert (nfs.allow_volume_expansion, nfs.is_default, nfs.reclaim_policy) == (
        False,
        False,
        "Delete",
    )
    assert nfs.mount_options == ("nfsvers=4.1",)


def test_fake_api_models_are_frozen(api: kube_api.Api) -> None:
    gp3 = next(c for c in api.storage_classes() if c.name == "gp3")
    with pytest.raises(pydantic.ValidationError):
        gp3.name = "other"  # type: ignore[misc]


def test_fake_api_beta_default_annotation_counts(
    fake: fakekube.FakeKube, api: kube_api.Api
) -> None:
    legacy = K.storage_class("legacy", K.EBS)
    legacy["metadata"]["annotations"]["storageclass.beta.kubernetes.io/is-default-class"] = "true"
    fake.add(legacy)
    assert next(c for c in api.storage_classes() if c.name == "legacy").is_default


def test_fake_api_secret_parameters_never_shown(
    fake: fakekube.FakeKube, api: kube_api.Api, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add(
        K.storage_class(
            "iscsi-chap",
            "iscsi.csi.example.com",
            parameters={
                "portal": "10.0.0.5:3260",
                "chapPassword": "hunter2",
                "apiToken": "tok-123",
                "csi.storage.k8s.io/provisioner-secret-name": "chap-secret",
            },
        )
    )
    caplog.set_level(logging.DEBUG)
    sc = next(c for c in api.storage_classes() if c.name == "iscsi-chap")
    assert sc.parameters["chapPassword"] == "hunter2"  # the driver still needs the value
    shown = sc.shown_parameters()
    assert shown["chapPassword"] == shown["apiToken"] == models.REDACTED
    # A Secret's name is no secret, and helps to debug the class.
    assert shown["csi.storage.k8s.io/provisioner-secret-name"] == "chap-secret"
    assert shown["portal"] == "10.0.0.5:3260"
    for text in (repr(sc), str(sc), caplog.text):
        assert "hunter2" not in text
        assert "tok-123" not in text


def test_fake_api_snapshot_classes(api: kube_api.Api) -> None:
    classes = {c.name: c for c in api.snapshot_classes()}
    assert classes["ebs-csi-snapclass"] == models.VolumeSnapshotClassInfo(
        name="ebs-csi-snapclass", driver=K.EBS, deletion_policy="Delete", is_default=True
    )
    assert classes["csi-vm-local-snapclass"].driver == K.CSI_VM_LOCAL


def test_fake_api_missing_snapshot_crd_means_no_classes(tmp_path: pathlib.Path) -> None:
    with fakekube.running(snapshot_crds=False) as fake:
        fake.add(*[o for o in K.typical_cluster() if o["kind"] != "VolumeSnapshotClass"])
        config = fake.kubeconfig(tmp_path / "kubeconfig")
        with kube_api.connect(kubeconfig_file=config, policy=QUICK) as api:
            assert api.snapshot_classes() == []
            assert len(api.storage_classes()) == 4  # the rest of the cluster reads fine
        # Answered at once: a missing API is not retried as if it were down.
        lists = [r for r in fake.requests if r.path.endswith("/volumesnapshotclasses")]
        assert len(lists) == 1


def test_fake_api_csi_nodes(api: kube_api.Api) -> None:
    nodes = {n.name: n for n in api.csi_nodes()}
    assert set(nodes) == set(K.NODES)
    ebs = nodes[K.NODES[0]].driver(K.EBS)
    assert ebs is not None
    assert ebs.topology_keys == (K.EBS_ZONE_KEY,)
    assert ebs.allocatable_count == 25
    assert ebs.node_id.startswith("i-")
    nfs = nodes[K.NODES[0]].driver(K.NFS)
    assert nfs is not None
    assert (nfs.topology_keys, nfs.allocatable_count) == ((), None)


def test_fake_api_large_lists_are_read_page_by_page(
    fake: fakekube.FakeKube, api: kube_api.Api
) -> None:
    fake.add(*(K.csi_node(f"worker-{i:04d}", [K.node_driver(K.NFS, f"w{i}")]) for i in range(1100)))
    nodes = api.csi_nodes()
    assert len(nodes) == 1100 + len(K.NODES)
    assert len({n.name for n in nodes}) == len(nodes)
    pages = [r for r in fake.requests if r.path.endswith("/csinodes")]
    assert len(pages) == 3
    assert all(r.query["limit"] == "500" for r in pages)
    assert "continue" not in pages[0].query
    assert all(r.query.get("continue") for r in pages[1:])


def test_fake_api_unset_optional_fields_stay_unknown(
    fake: fakekube.FakeKube, api: kube_api.Api
) -> None:
    fake.add({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "old"}})
    old = next(d for d in api.csi_drivers() if d.name == "old")
    assert old.attach_required is None
    assert old.storage_capacity is None
    assert old.volume_lifecycle_modes == ()
