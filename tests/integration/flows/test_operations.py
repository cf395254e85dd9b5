"""Every VM disk operation on the real local driver, in each configuration.

Data is checked byte for byte: known patterns imported, operated on, exported.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from csi_vm import errors, spec
from csi_vm.flows import offline_disk, snapshots, vms
from csi_vm.store import records
from tests.integration.flows.conftest import MIB, Lab, pattern_image

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SIZE = 8 * MIB

CONFIGS = {
    "full": (),
    "without-snapshot": ("snapshot",),
    "without-clone": ("clone",),
    "without-expansion": ("expansion",),
    "without-block": ("block",),
    "without-snapshot-clone-expansion": ("snapshot", "clone", "expansion"),
}

# The strategy each operation must take in each configuration.
EXPECTED = {
    "full": {
        "snapshot": "csi-group-snapshot",
        "clone": "csi-clone",
        "expand": "csi-expand",
        "restore": "csi-restore",
    },
    "without-snapshot": {
        "snapshot": "host-copy",
        "clone": "csi-clone",
        "expand": "csi-expand",
        "restore": "host-copy",
    },
    "without-clone": {
        "snapshot": "csi-group-snapshot",
        "clone": "snapshot-restore",
        "expand": "csi-expand",
        "restore": "csi-restore",
    },
    "without-expansion": {
        "snapshot": "csi-group-snapshot",
        "clone": "csi-clone",
        "expand": "copy-to-larger",
        "restore": "csi-restore",
    },
    "without-block": {
        "snapshot": "csi-group-snapshot",
        "clone": "csi-clone",
        "expand": "csi-expand",
        "restore": "csi-restore",
    },
    "without-snapshot-clone-expansion": {
        "snapshot": "host-copy",
        "clone": "host-copy",
        "expand": "copy-to-larger",
        "restore": "host-copy",
    },
}


def _spec(name: str, mode: spec.Mode, images: dict[str, pathlib.Path]) -> spec.VMSpec:
    disks = [
        {
            "name": d,
            "size": SIZE,
            "driver": "local",
            "mode": mode.value,
            "source": {"image": str(img)},
        }
        for d, img in images.items()
    ]
    return spec.VMSpec.model_validate({"name": name, "disks": disks})


def _export(lab: Lab, vm: str, disk: str) -> bytes:
    out = lab.tmp / f"export-{vm}-{disk}.raw"
    out.unlink(missing_ok=True)
    offline_disk.export(lab.env, vm=vm, disk=disk, file=out, fmt="raw")
    return out.read_bytes()


@pytest.mark.parametrize("config", sorted(CONFIGS), ids=sorted(CONFIGS))
def test_every_operation_keeps_data(config: str, lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(CONFIGS[config])
    before = lab.inventory()
    mode = spec.Mode.FILESYSTEM if "block" in CONFIGS[config] else spec.Mode.BLOCK
    first = {d: lab.tmp / f"{d}-a.raw" for d in ("root", "data")}
    want_a = {d: pattern_image(p, size=SIZE, seed=i) for i, (d, p) in enumerate(first.items())}
    expected = EXPECTED[config]

    vms.create(lab.env, _spec("vm1", mode, first))
    assert {d: _export(lab, "vm1", d) for d in first} == want_a

    _, plan = snapshots.create(lab.env, vm_name="vm1", name="s1")
    assert {d.strategy for d in plan.disks} == {expected["snapshot"]}

    # Change the source after the snapshot: the snapshot keeps the old content.
    second = lab.tmp / "root-b.raw"
    want_b = pattern_image(second, size=SIZE, seed=99)
    offline_disk.import_image(lab.env, vm="vm1", disk="root", image=second)
    assert _export(lab, "vm1", "root") == want_b

    plan = vms.restore(lab.env, snapshot="s1", as_vm="vm2")
    assert {d.strategy for d in plan.disks} == {expected["restore"]}
    assert {d: _export(lab, "vm2", d) for d in first} == want_a

    plan = vms.clone(lab.env, source="vm1", target="vm3")
    assert {d.strategy for d in plan.disks} == {expected["clone"]}
    assert _export(lab, "vm3", "root") == want_b
    assert _export(lab, "vm1", "root") == want_b  # the source is only read

    plan = offline_disk.expand(lab.env, vm="vm3", disk="data", size=2 * SIZE)
    assert plan.disks[0].strategy == expected["expand"]
    grown = _export(lab, "vm3", "data")
    assert len(grown) == 2 * SIZE
    assert grown[:SIZE] == want_a["data"] and not any(grown[SIZE:])

    vms.restore(lab.env, snapshot="s1", as_vm=None)
    assert _export(lab, "vm1", "root") == want_a["root"]

    snapshots.delete(lab.env, name="s1")
    for vm in ("vm1", "vm2", "vm3"):
        vms.delete(lab.env, name=vm)
    assert lab.inventory() == before
    assert records.list_vms(lab.env.store) == []


def test_bad_input_changes_nothing(lab_factory: Callable[..., Lab], tmp_path: pathlib.Path) -> None:
    lab = lab_factory()
    img = tmp_path / "a.raw"
    pattern_image(img, size=SIZE, seed=1)
    vms.create(lab.env, _spec("vm1", spec.Mode.BLOCK, {"root": img}))
    before = lab.inventory()
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    truncated = tmp_path / "cut.qcow2"
    truncated.write_bytes(b"QFI\xfb" + b"\0" * 60)
    cases: list[tuple[Callable[[], object], type[Exception]]] = [
        (lambda: offline_disk.expand(lab.env, vm="nope", disk="root", size=SIZE), errors.NotFound),
        (lambda: offline_disk.expand(lab.env, vm="vm1", disk="nope", size=SIZE), errors.NotFound),
        (
            lambda: offline_disk.expand(lab.env, vm="vm1", disk="root", size=SIZE // 2),
            errors.Rejected,
        ),
        (
            lambda: offline_disk.import_image(lab.env, vm="vm1", disk="root", image=not_an_image),
            errors.InvalidInput,
        ),
        (
            lambda: offline_disk.import_image(lab.env, vm="vm1", disk="root", image=truncated),
            errors.InvalidInput,
        ),
        (lambda: vms.clone(lab.env, source="vm1", target="vm1"), errors.AlreadyExists),
        (lambda: snapshots.delete(lab.env, name="none"), errors.NotFound),
    ]
    for call, cls in cases:
        with pytest.raises(cls):
            call()
    assert lab.inventory() == before
    assert [vm.name for vm in records.list_vms(lab.env.store)] == ["vm1"]


def test_names_with_path_separators_are_refused() -> None:
    for bad in ("a/b", "../x", "a\x00b", "x" * 70, ""):
        with pytest.raises(ValueError):
            spec.VMSpec.model_validate(
                {"name": bad, "disks": [{"name": "d", "size": "1MiB", "driver": "local"}]}
            )
