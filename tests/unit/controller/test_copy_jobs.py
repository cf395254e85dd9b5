"""Host-copy Jobs: where they run, how long they may take, how they see each volume.

Pure functions, and a fake reader for placement.
"""

from __future__ import annotations

from typing import Any

import pytest

from csi_vm import errors
from csi_vm.controller import placement, storage
from csi_vm.crd import kinds
from csi_vm.crd import models as crd
from tests.support import kubeobjects

pytestmark = pytest.mark.timeout(10)
NS = "vms"
OWNER = {"apiVersion": "csi-vm.io/v1alpha1", "kind": "CsiVMSnapshot", "name": "s1", "uid": "u1"}
BLOCK = crd.VolumeMode.BLOCK
FILESYSTEM = crd.VolumeMode.FILESYSTEM


def _target(size: str = "10Gi", *, mode: crd.VolumeMode = BLOCK) -> storage.Target:
    return storage.Target(
        name="s1-root", namespace=NS, size=size, storage_class="fast", owner=OWNER, mode=mode
    )


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


class _Reader:
    """Only what `placement.of_source` reads: claims and volumes by name."""

    def __init__(self, *found: dict[str, Any]) -> None:
        self.found = {(o["kind"], o["metadata"]["name"]): o for o in found}
        self.reads: list[str] = []

    def get(self, res: Any, name: str, *, namespace: str = "") -> dict[str, Any]:
        kind = {kinds.PVC: "PersistentVolumeClaim", kinds.PV: "PersistentVolume"}[res]
        self.reads.append(f"{kind}/{name}")
        try:
            return self.found[(kind, name)]
        except KeyError:
            raise errors.NotFound(f"{kind} {name} not found") from None


def _claim(name: str, *, volume: str = "") -> dict[str, Any]:
    spec = {"volumeName": volume} if volume else {}
    return {"kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize(
    ("size", "deadline"),
    [("1Mi", 600 + 3 * 1), ("10Gi", 600 + 3 * 512), ("1Ti", 600 + 3 * 52429)],
    ids=["tiny-disk-gets-the-floor", "10Gi", "1Ti"],
)
def test_the_deadline_is_a_floor_plus_the_disk_at_20_mib_s_per_attempt(
    size: str, deadline: int
) -> None:
    assert storage.copy_deadline(size) == deadline
    job = storage.copy_job(
        _target(size), source_claim="web-root", source_mode=BLOCK, image="csi-vm:test"
    )
    assert job["spec"]["activeDeadlineSeconds"] == deadline


def test_a_finished_copy_job_stays_for_the_controller_to_read() -> None:
    job = storage.copy_job(
        _target(), source_claim="web-root", source_mode=BLOCK, image="csi-vm:test"
    )
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert job["metadata"]["ownerReferences"] == [OWNER]  # it goes with its owner instead


def test_without_a_placement_the_scheduler_chooses() -> None:
    pod = _pod(
        storage.copy_job(_target(), source_claim="web-root", source_mode=BLOCK, image="csi-vm:test")
    )
    assert "affinity" not in pod and "tolerations" not in pod


def test_on_a_vms_node_the_job_is_pinned_by_node_name_whatever_the_taints() -> None:
    where = placement.of_source(_Reader(), claim="web-root", namespace=NS, node="n1")  # type: ignore[arg-type]
    job = storage.copy_job(
        _target(), source_claim="web-root", source_mode=BLOCK, image="csi-vm:test", where=where
    )
    required = _pod(job)["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert required == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
        ]
    }
    assert _pod(job)["tolerations"] == [{"operator": "Exists"}]


def test_the_holder_pod_and_the_copy_job_pick_a_node_the_same_way() -> None:
    holder = storage.vm_holder(
        {"metadata": {"name": "web", "namespace": NS, "uid": "u2"}},
        node="n1",
        disks=[storage.HeldDisk(name="root", claim="web-root", block=True)],
        image="csi-vm:test",
    )
    where = placement.Placement(selector=placement.on_node("n1"), any_taint=True)
    job = storage.copy_job(
        _target(), source_claim="web-root", source_mode=BLOCK, image="csi-vm:test", where=where
    )
    for field in ("affinity", "tolerations"):
        assert holder["spec"][field] == _pod(job)[field]


def test_a_vms_node_needs_no_lookup() -> None:
    reader = _Reader()
    placement.of_source(reader, claim="web-root", namespace=NS, node="n1")  # type: ignore[arg-type]
    assert reader.reads == []


def test_a_claim_no_vm_holds_follows_its_volumes_node_affinity() -> None:
    pv = kubeobjects.local_volume("pv-1", host="worker-3")
    reader = _Reader(_claim("s1-root", volume="pv-1"), pv)
    where = placement.of_source(reader, claim="s1-root", namespace=NS, node="")  # type: ignore[arg-type]
    assert where is not None
    assert where.selector == pv["spec"]["nodeAffinity"]["required"]
    assert not where.any_taint  # only the volume ties it down: taints still count
    pod = _pod(
        storage.copy_job(
            _target(), source_claim="s1-root", source_mode=BLOCK, image="x", where=where
        )
    )
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    expression = terms["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert expression["key"] == "kubernetes.io/hostname"
    assert expression["values"] == ["worker-3"]
    assert "tolerations" not in pod


@pytest.mark.parametrize(
    "found",
    [
        (),
        (_claim("s1-root"),),
        (_claim("s1-root", volume="pv-gone"),),
        (
            _claim("s1-root", volume="pv-1"),
            {"kind": "PersistentVolume", "metadata": {"name": "pv-1"}, "spec": {}},
        ),
    ],
    ids=["no-claim", "unbound-claim", "volume-gone", "volume-anywhere"],
)
def test_a_source_tied_to_no_node_leaves_the_choice_to_the_scheduler(
    found: tuple[dict[str, Any], ...],
) -> None:
    reader = _Reader(*found)
    assert placement.of_source(reader, claim="s1-root", namespace=NS, node="") is None  # type: ignore[arg-type]


def test_of_volume_ignores_an_empty_affinity() -> None:
    pv = {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": []}}}}
    assert placement.of_volume(pv) is None


#: Where the Job's container finds the disk of each end, by mode.
_DISK = {
    ("source", BLOCK): "/dev/csi-vm/source",
    ("source", FILESYSTEM): "/csi-vm/source/disk.img",
    ("target", BLOCK): "/dev/csi-vm/target",
    ("target", FILESYSTEM): "/csi-vm/target/disk.img",
}


@pytest.mark.parametrize("target", [BLOCK, FILESYSTEM], ids=["to-device", "to-file"])
@pytest.mark.parametrize("source", [BLOCK, FILESYSTEM], ids=["from-device", "from-file"])
def test_each_end_is_a_device_or_a_mounted_image_file_by_its_mode(
    source: crd.VolumeMode, target: crd.VolumeMode
) -> None:
    job = storage.copy_job(
        _target("1Gi", mode=target), source_claim="web-root", source_mode=source, image="x"
    )
    container = _pod(job)["containers"][0]
    devices = {d["name"]: d["devicePath"] for d in container.get("volumeDevices", ())}
    mounts = {m["name"]: m for m in container.get("volumeMounts", ())}
    for end, mode in (("source", source), ("target", target)):
        assert (end in devices, end in mounts) == (mode is BLOCK, mode is FILESYSTEM)
    if source is FILESYSTEM:
        assert mounts["source"]["readOnly"] is True
    if target is FILESYSTEM:
        assert "readOnly" not in mounts["target"]
    command = container["command"]
    assert command[-2:] == [_DISK["source", source], _DISK["target", target]]
    # A new image file is made as long as the disk; a device has its own size.
    sized = ["--min-size", str(1 << 30)]
    assert (command[-4:-2] == sized) == (target is FILESYSTEM)
    assert "--min-size" not in command[:-4]


def test_the_copy_runs_as_root_to_open_devices_and_write_into_fresh_filesystems() -> None:
    job = storage.copy_job(_target(), source_claim="web-root", source_mode=BLOCK, image="x")
    assert _pod(job)["containers"][0]["securityContext"] == {"runAsUser": 0}
