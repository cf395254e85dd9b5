"""Every VM disk operation of a stopped VM on the real cluster, for both driver configurations.

The full configuration must take the native path through the real sidecars
(CreateSnapshot by csi-snapshotter, CreateVolume with a content source by
csi-provisioner, ControllerExpandVolume by csi-resizer); the one without
snapshot, clone and expansion must fall back to host-copy Jobs. After each
step the data is compared byte for byte.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.cluster import disks
from tests.support.cluster import addons, kubectl

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"

NATIVE = {
    "snapshot": "csi-snapshot",
    "restore": "csi-restore",
    "clone": "csi-clone",
    "expand": "csi-expand",
}
FALLBACK = {
    "snapshot": "host-copy",
    "restore": "host-copy",
    "clone": "host-copy",
    "expand": "copy-to-larger",
}


_PLANNED = {
    "snapshot": "vm_snapshot",
    "restore": "vm_restore",
    "clone": "vm_clone",
    "expand": "disk_expand",
}


def _vm(name: str, storage_class: str, size: str = disks.DISK) -> Json:
    return {
        "apiVersion": API,
        "kind": "CsiVM",
        "metadata": {"name": name},
        "spec": {
            "running": False,
            "cpus": 1,
            "memory": "128Mi",
            "disks": [{"name": "root", "size": size, "storageClassName": storage_class}],
        },
    }


def _ready(kube: kubectl.Kube, kind: str, name: str, namespace: str) -> Json:
    def check() -> Json | None:
        obj = kube.get(kind, name, namespace=namespace)
        phase = (obj.get("status") or {}).get("phase")
        if phase == "Failed":
            raise AssertionError(f"{kind} {name} failed: {obj.get('status')}")
        return obj if phase == "Ready" else None

    return kube.wait_for(
        f"{kind} {name} Ready",
        check,
        timeout=420,
        explain=lambda: (
            kube.describe("-n", namespace, kind, name)
            + kube.run("-n", namespace, "get", "pvc,jobs,pods,volumesnapshots", check=False).stdout
        ),
    )


def _claim(kube: kubectl.Kube, vm: str, namespace: str) -> str:
    claim = f"{vm}-root"
    kube.wait_for(
        f"claim {claim}", lambda: kube.maybe("pvc", claim, namespace=namespace), timeout=120
    )
    return claim


def _new_vm_from(
    kube: kubectl.Kube,
    namespace: str,
    *,
    kind: str,
    spec: Json,
    want: dict[str, str],
    native_source: str,
) -> None:
    """Apply a restore or clone, wait for it, and compare the new VM's disk."""
    name = kind.removeprefix("CsiVM").lower()
    kube.apply(
        {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec},
        namespace=namespace,
    )
    done = _ready(kube, kind.lower(), name, namespace)
    assert done["status"]["strategy"] == want[name], done["status"]
    claim = _claim(kube, str(spec["targetVMName"]), namespace)
    assert disks.read_disk(kube, namespace, claim)[1] == disks.expected_digest()
    if native_source:
        source = kube.get("pvc", claim, namespace=namespace)["spec"].get("dataSource") or {}
        assert source.get("kind") == native_source, source


@pytest.fixture(params=addons.DRIVERS, ids=lambda d: d.key)
def config(request: pytest.FixtureRequest) -> addons.DriverConfiguration:
    return request.param  # type: ignore[no-any-return]


def test_stopped_vm_disk_operations(
    chart: kubectl.Kube,
    namespace: str,
    config: addons.DriverConfiguration,
    verified: dict[str, dict[str, str]],
) -> None:
    kube = chart
    plan = verified[config.storage_class]
    assert {op: plan[f] for op, f in _PLANNED.items()} == (
        NATIVE if config is addons.FULL else FALLBACK
    )
    native = config is addons.FULL
    want = NATIVE if native else FALLBACK
    kube.apply(_vm("src", config.storage_class), namespace=namespace)
    claim = _claim(kube, "src", namespace)

    disks.import_image(kube, namespace, claim)
    size, digest = disks.read_disk(kube, namespace, claim)
    assert (size, digest) == (disks.DISK_MIB * disks.MiB, disks.expected_digest())

    # Snapshot
    kube.apply(
        {
            "apiVersion": API,
            "kind": "CsiVMSnapshot",
            "metadata": {"name": "snap"},
            "spec": {"vmName": "src"},
        },
        namespace=namespace,
    )
    snap = _ready(kube, "csivmsnapshot", "snap", namespace)
    assert snap["status"]["strategy"] == want["snapshot"], snap["status"]
    if native:
        taken = kube.items("volumesnapshots", namespace=namespace)
        assert taken and all(s["status"]["readyToUse"] for s in taken)
        content = kube.get(
            "volumesnapshotcontent", taken[0]["status"]["boundVolumeSnapshotContentName"]
        )
        assert content["status"]["snapshotHandle"], (
            "csi-snapshotter never got a handle from CreateSnapshot"
        )
    else:
        assert not kube.items("volumesnapshots", namespace=namespace)

    # Restore into a new VM, then clone the source: each makes a VM whose
    # disk must read as the imported image.
    for kind, spec, made in (
        ("CsiVMRestore", {"snapshotName": "snap", "targetVMName": "restored"}, "VolumeSnapshot"),
        ("CsiVMClone", {"sourceVMName": "src", "targetVMName": "cloned"}, "PersistentVolumeClaim"),
    ):
        _new_vm_from(
            kube, namespace, kind=kind, spec=spec, want=want, native_source=made if native else ""
        )

    # Expand
    kube.run(
        "-n",
        namespace,
        "patch",
        "csivm",
        "src",
        "--type=json",
        "-p",
        f'[{{"op":"replace","path":"/spec/disks/0/size","value":"{disks.GROWN}"}}]',
    )

    seen: set[str] = set()

    def grown() -> tuple[str, str] | None:
        vm = kube.get("csivm", "src", namespace=namespace)
        resize = ((vm.get("status") or {}).get("disks") or [{}])[0].get("resize") or {}
        if resize.get("phase") == "Failed":
            raise AssertionError(f"expansion failed: {resize}")
        if resize.get("strategy"):
            seen.add(str(resize["strategy"]))
        claim_now = vm["spec"]["disks"][0].get("claimName") or claim
        pvc = kube.get("pvc", claim_now, namespace=namespace)
        capacity = (pvc.get("status") or {}).get("capacity", {}).get("storage")
        if capacity != disks.GROWN:
            return None
        # A copy's new claim says how it was made; a native resize keeps its
        # claim, and the VM's status names the strategy while it runs.
        made_by = pvc["metadata"].get("annotations", {}).get("csi-vm.io/strategy", "")
        if made_by.startswith("disk_expand/"):
            seen.add(made_by.removeprefix("disk_expand/"))
        elif claim_now == claim:
            # Grown in place, which only the resizer does; the VM's status
            # drops the finished resize, so it may have passed unseen.
            seen.add("csi-expand")
        return (" ".join(sorted(seen)), claim_now) if seen else None

    strategy, grown_claim = kube.wait_for(
        "disk grown",
        grown,
        timeout=420,
        explain=lambda: (
            kube.describe("-n", namespace, "csivm", "src")
            + kube.run("-n", namespace, "get", "pvc,jobs,pods", check=False).stdout
        ),
    )
    assert strategy == want["expand"]
    size, digest = disks.read_disk(kube, namespace, grown_claim, size_mib=disks.GROWN_MIB)
    assert size == disks.GROWN_MIB * disks.MiB
    assert digest == disks.expected_digest(disks.GROWN_MIB)
    if native:
        pv = kube.get("pv", kube.get("pvc", grown_claim, namespace=namespace)["spec"]["volumeName"])
        assert pv["spec"]["capacity"]["storage"] == disks.GROWN
        events = kube.items("events", namespace=namespace)
        resized = [e for e in events if e.get("reason") == "VolumeResizeSuccessful"]
        assert resized, "csi-resizer reported no ControllerExpandVolume"
