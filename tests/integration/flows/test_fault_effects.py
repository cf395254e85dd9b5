"""Disk flows against a local driver that lies (--fault): fall back, or fail with one line.

A flow never reports success on a device that does not show it, and never
leaves a volume or snapshot behind. Data is checked byte for byte.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest
import yaml

from csi_vm import config, errors, spec
from csi_vm.flows import context, effects, offline_disk, snapshots, vms
from csi_vm.store import db, records
from tests.integration.flows.conftest import MIB, Lab, pattern_image

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SIZE = 8 * MIB


def _vm(lab: Lab, name: str, mode: spec.Mode = spec.Mode.BLOCK) -> bytes:
    image = lab.tmp / f"{name}.raw"
    data = pattern_image(image, size=SIZE, seed=len(name))
    disk = {"name": "root", "size": SIZE, "driver": "local", "mode": mode.value}
    disk["source"] = {"image": str(image)}
    vms.create(lab.env, spec.VMSpec.model_validate({"name": name, "disks": [disk]}))
    return data


def _export(lab: Lab, vm: str, *, disk: str = "root") -> bytes:
    out = lab.tmp / f"export-{vm}-{disk}.raw"
    out.unlink(missing_ok=True)
    offline_disk.export(lab.env, vm=vm, disk=disk, file=out, fmt="raw")
    return out.read_bytes()


def _asserting(lab: Lab, *features: str) -> context.Env:
    """The lab's environment with a config that asserts `features` for the driver."""
    cfg = {
        "node": "node-a",
        "drivers": {"local": {"endpoint": lab.driver.endpoint, "assert": list(features)}},
    }
    lab.config_file.write_text(yaml.safe_dump(cfg))
    lab.env = _fresh(lab)
    return lab.env


@pytest.mark.parametrize("mode", [spec.Mode.BLOCK, spec.Mode.FILESYSTEM], ids=str)
def test_expansion_without_growth_falls_back_to_a_copy(
    mode: spec.Mode, lab_factory: Callable[..., Lab]
) -> None:
    lab = lab_factory(faults=("expand-no-grow",))
    before = lab.inventory()
    # The probe catches this driver: the plan copies from the start.
    want = _vm(lab, "vm1", mode)
    plan = offline_disk.expand(lab.env, vm="vm1", disk="root", size=2 * SIZE)
    assert plan.disks[0].strategy == "copy-to-larger"
    grown = _export(lab, "vm1")
    assert len(grown) == 2 * SIZE and grown[:SIZE] == want and not any(grown[SIZE:])
    vms.delete(lab.env, name="vm1")
    assert lab.inventory() == before


def test_expansion_that_did_not_reach_the_node_is_copied_and_says_why(
    lab_factory: Callable[..., Lab],
) -> None:
    """A report that trusted the expansion (probed before the driver started lying)."""
    lab = lab_factory()
    before = lab.inventory()
    want = _vm(lab, "vm1")
    assert lab.env.plan("local")["disk_expand"].strategy == "csi-expand"
    lab.driver.args += ["--fault", "expand-no-grow"]
    lab.driver.restart()
    plan = offline_disk.expand(lab.env, vm="vm1", disk="root", size=2 * SIZE)
    choice = plan.disks[0]
    assert choice.strategy == "copy-to-larger"
    assert "ControllerExpandVolume answered" in choice.reason
    assert f"the node sees a {SIZE}-byte device" in choice.reason
    assert "cannot be undone" in choice.reason
    disk = records.get_vm(lab.env.store, "vm1").disk("root")
    assert disk.size == 2 * SIZE
    grown = _export(lab, "vm1")
    assert len(grown) == 2 * SIZE and grown[:SIZE] == want
    # The stale report was dropped: the next plan comes from a fresh probe.
    assert records.cached_caps(lab.env.store, "local") is None
    vms.delete(lab.env, name="vm1")
    assert lab.inventory() == before


def _lie_after_probe(lab: Lab, fault: str) -> None:
    """Probe the honest driver (the cached report trusts it), then make it lie."""
    lab.env.report("local")
    lab.driver.args += ["--fault", fault]
    lab.driver.restart()


def test_blank_clone_is_rolled_back_with_one_clear_error(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    _vm(lab, "vm1")
    before = lab.inventory()
    _lie_after_probe(lab, "clone-blank")
    with pytest.raises(effects.EffectMissing) as caught:
        vms.clone(lab.env, source="vm1", target="vm2")
    message = str(caught.value)
    assert "vm1: vm2-root: the new volume differs from its source at byte" in message
    assert "answered the clone ready but did not do it" in message
    assert "retry it" in message
    assert records.find_vm(lab.env.store, "vm2") is None
    assert lab.inventory() == before
    # The retry probes afresh, finds clones blank and restores a snapshot instead.
    lab.env = _fresh(lab)
    plan = vms.clone(lab.env, source="vm1", target="vm2")
    assert plan.disks[0].strategy == "snapshot-restore"
    assert _export(lab, "vm2") == _export(lab, "vm1")


def _fresh(lab: Lab) -> context.Env:
    """A new process's view: no report kept in memory, the store as it is."""
    lab.env.close()
    return context.Env(
        cfg=config.load(lab.config_file), store=db.Store(lab.db_file), state_dir=lab.state_dir
    )


def test_blank_snapshot_is_rolled_back_with_one_clear_error(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory()
    want = _vm(lab, "vm1")
    before = lab.inventory()
    _lie_after_probe(lab, "snapshot-blank")
    with pytest.raises(effects.EffectMissing) as caught:
        snapshots.create(lab.env, vm_name="vm1", name="s1")
    assert "snapshot of root: the new volume differs from its source" in str(caught.value)
    assert "answered the snapshot ready" in str(caught.value)
    assert records.find_snapshot(lab.env.store, "s1") is None
    assert lab.inventory() == before
    lab.env = _fresh(lab)
    _, plan = snapshots.create(lab.env, vm_name="vm1", name="s1")
    assert plan.disks[0].strategy == "host-copy"
    vms.restore(lab.env, snapshot="s1", as_vm="vm2")
    assert _export(lab, "vm2") == want


def test_restore_smaller_than_the_disk_is_rolled_back(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    _vm(lab, "vm1")
    snapshots.create(lab.env, vm_name="vm1", name="s1")
    before = lab.inventory()
    lab.driver.args += ["--fault", "oversize"]
    lab.driver.restart()
    with pytest.raises(effects.EffectMissing) as caught:
        vms.restore(lab.env, snapshot="s1", as_vm="vm2")
    assert f"the new volume holds {SIZE - SIZE // 8} bytes, the disk {SIZE}" in str(caught.value)
    assert records.find_vm(lab.env.store, "vm2") is None
    assert lab.inventory() == before


def test_block_disk_on_a_driver_whose_devices_are_short_is_refused(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(faults=("oversize",))
    before = lab.inventory()
    with pytest.raises(errors.Unsupported, match="driver 'local' has no block volumes"):
        _vm(lab, "vm1")
    assert lab.inventory() == before
    want = _vm(lab, "vm2", spec.Mode.FILESYSTEM)  # filesystem disks fit with room to spare
    assert _export(lab, "vm2") == want


@pytest.mark.parametrize(
    ("fault", "feature", "run", "fallback", "native"),
    [
        ("undeclared-expansion", "expansion_controller", "expand", "copy-to-larger", "csi-expand"),
        ("undeclared-clone", "clone", "clone", "snapshot-restore", "csi-clone"),
        ("undeclared-snapshot", "snapshot", "snapshot", "host-copy", "csi-snapshot"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("undeclared") else "",
)
def test_undeclared_feature_is_used_only_when_asserted(
    fault: str,
    feature: str,
    run: str,
    fallback: str,
    native: str,
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(faults=(fault,))
    _vm(lab, "vm1")
    assert _strategy(lab.env, run, target="a") == fallback
    env = _asserting(lab, feature)
    assert _strategy(env, run, target="b") == native


def _strategy(env: context.Env, run: str, *, target: str) -> str:
    if run == "expand":
        size = records.get_vm(env.store, "vm1").disk("root").size + SIZE
        return offline_disk.expand(env, vm="vm1", disk="root", size=size).disks[0].strategy
    if run == "clone":
        return vms.clone(env, source="vm1", target=f"vm-{target}").disks[0].strategy
    _, plan = snapshots.create(env, vm_name="vm1", name=f"s-{target}")
    return plan.disks[0].strategy


def test_a_sample_misses_what_a_full_compare_finds(tmp_path: pathlib.Path) -> None:
    """--verify compares every byte; the sample reads spread blocks only."""
    src, dst = tmp_path / "src.raw", tmp_path / "dst.raw"
    pattern_image(src, size=SIZE, seed=7)
    data = bytearray(src.read_bytes())
    hidden = effects.MIN_STRIDE + effects.SAMPLE_BYTES + 5  # between two sampled blocks
    data[hidden] ^= 0xFF
    dst.write_bytes(bytes(data))
    assert effects.first_difference(str(src), str(dst), size=SIZE, full=False) is None
    assert effects.first_difference(str(src), str(dst), size=SIZE, full=True) == hidden
    data[0] ^= 0xFF
    dst.write_bytes(bytes(data))
    assert effects.first_difference(str(src), str(dst), size=SIZE, full=False) == 0


@pytest.mark.parametrize(
    ("fault", "args", "answer"),
    [
        ("clone-blank", ("clone", "vm1", "vm2", "--verify"), "the clone ready"),
        ("snapshot-blank", ("snapshot", "create", "vm1", "--verify"), "the snapshot ready"),
    ],
    ids=["clone", "snapshot"],
)
def test_cli_says_one_line_when_the_driver_lied(
    fault: str, args: tuple[str, ...], answer: str, lab_factory: Callable[..., Lab]
) -> None:
    lab = lab_factory()
    _vm(lab, "vm1")
    _lie_after_probe(lab, fault)
    lab.env.close()
    before = lab.inventory()
    done = lab.cli(*args)
    assert done.returncode == errors.OperationFailed.exit_code, done.stderr
    assert "Traceback" not in done.stderr
    assert f"answered {answer} but did not do it" in done.stderr
    assert "compared in full" in done.stderr
    assert lab.inventory() == before


def _blank_spec(name: str, mode: spec.Mode, disks: int = 1) -> spec.VMSpec:
    return spec.VMSpec.model_validate(
        {
            "name": name,
            "disks": [
                {"name": f"d{i}", "size": SIZE, "driver": "local", "mode": mode.value}
                for i in range(disks)
            ],
        }
    )


def test_blank_disk_on_a_short_device_is_rolled_back(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    before = lab.inventory()
    _lie_after_probe(lab, "oversize")
    with pytest.raises(effects.EffectMissing, match="the new volume holds 7340032 bytes"):
        vms.create(lab.env, _blank_spec("vm1", spec.Mode.BLOCK))
    assert records.find_vm(lab.env.store, "vm1") is None
    assert lab.inventory() == before
    vms.create(lab.env, _blank_spec("vm2", spec.Mode.FILESYSTEM))  # room to spare there
    assert _export(lab, "vm2", disk="d0") == bytes(SIZE)


def test_undeclared_group_snapshot_takes_one_snapshot_per_disk(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory(faults=("undeclared-group-snapshot",))
    vms.create(lab.env, _blank_spec("vm1", spec.Mode.BLOCK, disks=2))
    _, plan = snapshots.create(lab.env, vm_name="vm1", name="s1")
    assert {d.strategy for d in plan.disks} == {"csi-snapshot"}
    lab.env = _asserting(lab, "group_snapshot")
    _, plan = snapshots.create(lab.env, vm_name="vm1", name="s2")
    assert {d.strategy for d in plan.disks} == {"csi-group-snapshot"}


def test_undeclared_staging_is_not_called_unless_asserted(lab_factory: Callable[..., Lab]) -> None:
    """This driver needs staging but does not declare it: the error says to assert it."""
    lab = lab_factory(faults=("undeclared-stage-unstage",))
    before = lab.inventory()
    with pytest.raises(errors.Rejected) as caught:
        _vm(lab, "vm1")
    assert "serves NodeStageVolume but does not declare STAGE_UNSTAGE_VOLUME" in str(caught.value)
    assert "add stage_unstage to its assert: list" in str(caught.value)
    assert records.find_vm(lab.env.store, "vm1") is None
    assert lab.inventory() == before
    lab.env = _asserting(lab, "stage_unstage")
    want = _vm(lab, "vm1")
    assert _export(lab, "vm1") == want


def test_snapshot_records_the_fingerprint_of_its_data(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    _vm(lab, "vm1")
    snap, _ = snapshots.create(lab.env, vm_name="vm1", name="s1")
    recorded = records.get_snapshot(lab.env.store, "s1").disk("root").fingerprint
    assert recorded == snap.disk("root").fingerprint
    disk = lab.tmp / "vm1-now.raw"
    disk.write_bytes(_export(lab, "vm1"))
    assert effects.unlike(str(disk), recorded) is None
    assert effects.samples(recorded) == len(effects.offsets(SIZE))
    plan = vms.restore(lab.env, snapshot="s1", as_vm="vm2")
    assert plan.disks[0].strategy == "csi-restore"
    assert "checked for size and against the blocks sampled" in plan.disks[0].reason
    assert _export(lab, "vm2") == disk.read_bytes()


def test_restore_without_its_data_is_rolled_back_with_one_clear_error(
    lab_factory: Callable[..., Lab],
) -> None:
    """The snapshot was sound when taken; the driver's restore now answers ready, blank."""
    lab = lab_factory()
    want = _vm(lab, "vm1")
    snapshots.create(lab.env, vm_name="vm1", name="s1")
    before = lab.inventory()
    _lie_after_probe(lab, "restore-blank")
    for as_vm in ("vm2", None):  # as a new VM, and in place
        with pytest.raises(effects.EffectMissing) as caught:
            vms.restore(lab.env, snapshot="s1", as_vm=as_vm)
        message = str(caught.value)
        assert "restore-root: the restored volume differs at byte" in message
        assert "from the snapshot's data as it was taken (sampled)" in message
        assert "answered the volume restored but did not do it" in message
        assert lab.inventory() == before
    assert records.find_vm(lab.env.store, "vm2") is None
    assert _export(lab, "vm1") == want


def test_snapshot_recorded_without_samples_is_restored_for_size_and_says_so(
    lab_factory: Callable[..., Lab],
) -> None:
    """A snapshot an older csi-vm recorded: nothing to compare the restore with."""
    lab = lab_factory()
    want = _vm(lab, "vm1")
    snapshots.create(lab.env, vm_name="vm1", name="s1")
    with lab.env.store.transaction() as cur:
        cur.execute("UPDATE snapshot_disks SET fingerprint = '' WHERE snapshot = 's1'")
    plan = vms.plan_restore(lab.env, snapshot="s1", as_vm="vm2")
    assert "checked for size only: the snapshot was recorded without samples" in (
        plan.disks[0].reason
    )
    vms.restore(lab.env, snapshot="s1", as_vm="vm2")
    assert _export(lab, "vm2") == want


def test_cli_restore_says_one_line_when_the_driver_lied(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory()
    want = _vm(lab, "vm1")
    snapshots.create(lab.env, vm_name="vm1", name="s1")
    _lie_after_probe(lab, "restore-blank")
    lab.env.close()
    before = lab.inventory()
    done = lab.cli("snapshot", "restore", "s1", "--as", "vm2")
    assert done.returncode == errors.OperationFailed.exit_code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if "did not do it" in line]
    assert len(lines) == 1, done.stderr
    assert "answered the volume restored but did not do it" in lines[0]
    assert lab.inventory() == before
    lab.env = _fresh(lab)
    assert records.find_vm(lab.env.store, "vm2") is None
    assert _export(lab, "vm1") == want
