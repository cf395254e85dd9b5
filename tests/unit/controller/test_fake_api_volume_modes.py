"""Filesystem disks against the fake Kubernetes API server (a fake: no real cluster here).

A VM disk in volumeMode Filesystem is the image file disk.img in its
volume. Every claim made from such a disk (a snapshot's copy, a restore, a
clone, a larger copy) must be a Filesystem claim too, large enough for the
image and the filesystem around it, and every copy Job must mount it and
copy the image file. A growth ends with the image file at its new size: the
test runs the Job's own command on files standing in for the two volumes.
"""

from __future__ import annotations

import pathlib
import random
from typing import Any

import pytest
from click.testing import CliRunner

from csi_vm.cli import main
from csi_vm.controller import context, run, volumemode
from csi_vm.crd import kinds
from tests.support import fakekube
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
NS = v.NS
MiB = 1 << 20
GiB = 1 << 30
FS = "Filesystem"


def _get(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    return ctx.objs.get(res, name, namespace=NS if res.namespaced else "")


def _pass(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    run.reconcile(ctx, res, _get(ctx, res, name))
    return _get(ctx, res, name)


def _status(fake: fakekube.FakeKube, group: str, plural: str, name: str, status: Any) -> None:
    res = fake.store.resource(group, "v1", plural)
    assert res is not None
    fake.store.patch(res, NS, name, {"status": status}, subresource="status")


def _bound(fake: fakekube.FakeKube, *names: str) -> None:
    for name in names:
        _status(fake, "", "persistentvolumeclaims", name, {"phase": "Bound"})


def _job_done(fake: fakekube.FakeKube, name: str) -> None:
    _status(fake, "batch", "jobs", name, {"succeeded": 1})


def _snapshot_ready(fake: fakekube.FakeKube, name: str) -> None:
    _status(fake, "snapshot.storage.k8s.io", "volumesnapshots", name, {"readyToUse": True})


def _container(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def _user_claim(name: str, *, mode: str | None) -> dict[str, Any]:
    """A claim the user made; without ``mode`` the API's default, Filesystem."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "fast",
    }
    if mode:
        spec["volumeMode"] = mode
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def _claim_on(ctx: context.Context, vm: str, claim: str) -> None:
    disks = [{"name": "root", "size": "1Gi", "storageClassName": "fast", "claimName": claim}]
    ctx.objs.patch(kinds.VM, vm, {"spec": {"disks": disks}}, namespace=NS)


@pytest.mark.parametrize(
    ("mode", "want", "asks", "disk_size"),
    [
        ("", "Block", "1Gi", None),
        ("Block", "Block", "1Gi", None),
        (FS, FS, "1152Mi", "1Gi"),
    ],
    ids=["block-by-default", "block", "filesystem-with-room-for-its-filesystem"],
)
def test_a_vms_claim_takes_the_disks_volume_mode(
    fake: fakekube.FakeKube,
    ctx: context.Context,
    mode: str,
    want: str,
    asks: str,
    disk_size: str | None,
) -> None:
    fake.add(v.vm("web", mode=mode))
    _pass(ctx, kinds.VM, "web")
    pvc = _get(ctx, kinds.PVC, "web-root")
    assert pvc["spec"]["volumeMode"] == want
    assert pvc["spec"]["resources"]["requests"]["storage"] == asks
    assert pvc["metadata"]["annotations"].get(volumemode.DISK_SIZE_ANNOTATION) == disk_size
    _bound(fake, "web-root")
    vm = _pass(ctx, kinds.VM, "web")
    assert "resize" not in vm["status"]["disks"][0]  # the room is not taken for a growth


def test_a_host_copied_snapshot_of_a_filesystem_disk_copies_the_image_file(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web", mode=FS), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.VM, "web")
    snap = _pass(ctx, kinds.SNAPSHOT, "s1")
    copy = _get(ctx, kinds.PVC, "s1-root")
    assert (copy["spec"]["volumeMode"], copy["spec"]["resources"]["requests"]["storage"]) == (
        FS,
        "1152Mi",
    )
    container = _container(_get(ctx, kinds.JOB, "s1-root-copy"))
    assert "volumeDevices" not in container
    assert container["volumeMounts"] == [
        {"name": "source", "mountPath": "/csi-vm/source", "readOnly": True},
        {"name": "target", "mountPath": "/csi-vm/target"},
    ]
    assert container["command"][-4:] == [
        "--min-size",
        str(GiB),
        "/csi-vm/source/disk.img",
        "/csi-vm/target/disk.img",
    ]
    assert snap["status"]["disks"][0]["volumeMode"] == FS


@pytest.mark.parametrize(
    ("plan", "made"),
    [(v.BASIC, "s1-root"), (v.NATIVE, None)],
    ids=["host-copy", "csi-snapshot"],
)
def test_a_snapshot_keeps_the_mode_of_a_claim_the_user_named(
    fake: fakekube.FakeKube, ctx: context.Context, plan: Any, made: str | None
) -> None:
    # The disk's spec says nothing of a mode (Block by default); the claim decides.
    fake.add(v.report("fast", plan), v.vm("web"), _user_claim("data", mode=None))
    _claim_on(ctx, "web", "data")
    fake.add(v.snapshot("s1", vm_name="web"))
    snap = _pass(ctx, kinds.SNAPSHOT, "s1")
    assert snap["status"]["disks"][0]["volumeMode"] == FS
    if made:
        assert _get(ctx, kinds.PVC, made)["spec"]["volumeMode"] == FS
        job = _get(ctx, kinds.JOB, f"{made}-copy")
        assert _container(job)["command"][-2] == "/csi-vm/source/disk.img"


def test_a_restore_of_a_filesystem_volume_snapshot_makes_a_filesystem_claim(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web", mode=FS), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.VM, "web")
    _pass(ctx, kinds.SNAPSHOT, "s1")
    _snapshot_ready(fake, "s1-root")
    assert _pass(ctx, kinds.SNAPSHOT, "s1")["status"]["phase"] == "Ready"
    # The snapshot's record is enough: the source VM and its claim are gone.
    ctx.objs.delete(kinds.VM, "web", namespace=NS)
    ctx.objs.delete(kinds.PVC, "web-root", namespace=NS)
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    _pass(ctx, kinds.RESTORE, "r1")
    pvc = _get(ctx, kinds.PVC, "web2-root")
    assert pvc["spec"]["volumeMode"] == FS
    assert pvc["spec"]["dataSource"]["kind"] == "VolumeSnapshot"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1152Mi"
    _bound(fake, "web2-root")
    assert _pass(ctx, kinds.RESTORE, "r1")["status"]["phase"] == "Ready"
    disk = _get(ctx, kinds.VM, "web2")["spec"]["disks"][0]
    assert (disk["claimName"], disk["volumeMode"]) == ("web2-root", FS)


def test_a_restore_of_a_host_copied_filesystem_snapshot_copies_file_to_file(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.BASIC), v.vm("web", mode=FS), v.snapshot("s1", vm_name="web"))
    _pass(ctx, kinds.VM, "web")
    _pass(ctx, kinds.SNAPSHOT, "s1")
    _job_done(fake, "s1-root-copy")
    _pass(ctx, kinds.SNAPSHOT, "s1")
    fake.add(v.restore("r1", snapshot_name="s1", target="web2"))
    _pass(ctx, kinds.RESTORE, "r1")
    assert _get(ctx, kinds.PVC, "web2-root")["spec"]["volumeMode"] == FS
    command = _container(_get(ctx, kinds.JOB, "web2-root-copy"))["command"]
    assert command[-2:] == ["/csi-vm/source/disk.img", "/csi-vm/target/disk.img"]


@pytest.mark.parametrize(
    ("plan", "source_kind"),
    [(v.NATIVE, "PersistentVolumeClaim"), (v.SNAPSHOT_ONLY, "VolumeSnapshot")],
    ids=["csi-clone", "snapshot-restore"],
)
def test_a_clone_of_a_filesystem_disk_makes_a_filesystem_claim(
    fake: fakekube.FakeKube, ctx: context.Context, plan: Any, source_kind: str
) -> None:
    fake.add(v.report("fast", plan), v.vm("web", mode=FS))
    fake.add(v.clone("c1", source="web", target="web2"))
    _pass(ctx, kinds.VM, "web")
    _pass(ctx, kinds.CLONE, "c1")
    if source_kind == "VolumeSnapshot":
        _snapshot_ready(fake, "web2-root-tmp")
        _pass(ctx, kinds.CLONE, "c1")
    pvc = _get(ctx, kinds.PVC, "web2-root")
    assert pvc["spec"]["volumeMode"] == FS
    assert pvc["spec"]["dataSource"]["kind"] == source_kind
    # A clone asks for no less than its source: both hold a 1Gi disk.
    assert pvc["spec"]["resources"]["requests"]["storage"] == "1152Mi"


def test_a_filesystem_disk_grows_into_an_image_file_of_the_new_size(
    fake: fakekube.FakeKube, ctx: context.Context, tmp_path: pathlib.Path
) -> None:
    # The driver could expand the volume, but that would not grow the image file.
    fake.add(v.report("fast", v.NATIVE), v.vm("web", mode=FS, size="64Mi"))
    _pass(ctx, kinds.VM, "web")
    _bound(fake, "web-root")
    _grow(ctx, "128Mi")
    vm = _pass(ctx, kinds.VM, "web")
    resize = vm["status"]["disks"][0]["resize"]
    assert (resize["phase"], resize["strategy"]) == ("Pending", "copy-to-larger")
    assert "Filesystem disk is an image file" in resize["fallbackReason"]
    assert _get(ctx, kinds.PVC, "web-root")["spec"]["resources"]["requests"]["storage"] == "192Mi"
    _pass(ctx, kinds.VM, "web")
    larger = _get(ctx, kinds.PVC, "web-root-128mi")
    assert larger["spec"]["volumeMode"] == FS
    assert larger["spec"]["resources"]["requests"]["storage"] == "256Mi"
    job = _get(ctx, kinds.JOB, "web-root-128mi-copy")
    old = _volumes(job, tmp_path)
    data = _write_image(old["source"] / "disk.img", size=64 * MiB)
    _run(job, tmp_path)
    image = old["target"] / "disk.img"
    assert image.stat().st_size == 128 * MiB
    with image.open("rb") as grown:
        assert grown.read(64 * MiB) == data
        assert grown.read() == bytes(64 * MiB)
    _job_done(fake, "web-root-128mi-copy")
    _bound(fake, "web-root-128mi")
    _pass(ctx, kinds.VM, "web")
    vm = _pass(ctx, kinds.VM, "web")
    assert vm["spec"]["disks"][0]["claimName"] == "web-root-128mi"
    assert "resize" not in vm["status"]["disks"][0]  # the new claim holds the new size


def _grow(ctx: context.Context, size: str) -> None:
    disks = [{"name": "root", "size": size, "storageClassName": "fast", "volumeMode": FS}]
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": disks}}, namespace=NS)


def _volumes(job: dict[str, Any], root: pathlib.Path) -> dict[str, pathlib.Path]:
    """A directory under ``root`` for each volume the Job mounts: fresh, empty filesystems."""
    found = {}
    for mount in _container(job)["volumeMounts"]:
        found[mount["name"]] = root / mount["mountPath"].lstrip("/")
        found[mount["name"]].mkdir(parents=True)
    return found


def _write_image(path: pathlib.Path, *, size: int) -> bytes:
    data = bytearray(size)
    rng = random.Random(7)
    for offset in (0, 17 * MiB, size - MiB):
        data[offset : offset + MiB] = rng.randbytes(MiB)
    path.write_bytes(bytes(data))
    return bytes(data)


def _run(job: dict[str, Any], root: pathlib.Path) -> None:
    """Run the Job's command as its container would, its volumes under ``root``."""
    command = _container(job)["command"]
    assert command[:3] == ["csi-vm", "image", "copy"]
    args = [f"{root}{arg}" if arg.startswith("/csi-vm/") else arg for arg in command[1:]]
    result = CliRunner().invoke(main.app, args)
    assert (result.exit_code, result.exception) == (0, None), result.output
