"""`clone --count --dry-run`: the real command's checks and an estimate, and nothing changed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from csi_vm.store import records
from tests.integration.fanout.conftest import Golden, Lab, assert_tidy, make_golden, vm_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _state(lab: Lab) -> object:
    vms = [(v.name, [d.volume_id for d in v.disks]) for v in records.list_vms(lab.env.store)]
    return vms, lab.inventory()


def test_dry_run_plans_and_changes_nothing(ladder: str, golden: Golden) -> None:
    before = _state(golden.lab)
    args = ("--count", "3", "--name-template", "lab-{i}", "--dry-run")
    out = golden.fanout(*args)
    assert _state(golden.lab) == before
    assert_tidy(golden.lab)
    assert out["dry_run"] is True
    assert out["strategy"] == ladder
    assert out["names"] == ["lab-1", "lab-2", "lab-3"]
    assert out["made"] == []
    per_clone = golden.data_bytes() if ladder == "host-copy" else 0
    assert (out["bytes_per_clone"], out["expected_bytes"]) == (per_clone, 3 * per_clone)
    assert out["estimate_basis"]
    if ladder == "host-copy":
        # No fan-out timed yet: the estimate comes from reading the source just now.
        assert "read at just now" in str(out["estimate_basis"])
        assert isinstance(out["expected_seconds"], float)
    else:
        assert out["expected_seconds"] is None


def test_after_a_fanout_the_estimate_uses_its_measured_rate(ladder: str, golden: Golden) -> None:
    golden.fanout("--count", "2", "--name-template", "lab-{i}")
    out = golden.fanout("--count", "3", "--name-template", "more-{i}", "--dry-run")
    assert isinstance(out["expected_seconds"], float)
    assert "the last" in str(out["estimate_basis"]), out["estimate_basis"]
    assert vm_names(golden.lab) == {golden.vm, "lab-1", "lab-2"}


def test_table_output_says_strategy_bytes_and_time(golden: Golden) -> None:
    got = golden.lab.cli(
        "clone", golden.vm, "--count", "2", "--name-template", "t-{i}", "--dry-run"
    )
    assert got.returncode == 0, got.stderr
    assert "would make 2 clones of gold (t-1 .. t-2)" in got.stdout
    assert "expected:" in got.stdout


BAD = [
    (["--count", "3", "--name-template", "lab"], "has no {i}"),
    (["--count", "3", "--name-template", "Lab-{i}"], "'Lab-1' must be"),
    (["--count", "3", "--name-template", "{x}-{i}"], "only {i}"),
    (["--count", "0", "--name-template", "lab-{i}"], "--count 0"),
    (["--count", "3"], "--count needs --name-template"),
    (["--name-template", "lab-{i}"], "--name-template needs --count"),
    (["x", "--count", "3", "--name-template", "lab-{i}"], "not both"),
    (["--count", "3", "--name-template", "lab-{i}", "--parallel", "0"], "--parallel 0"),
    (["--count", "3", "--name-template", "g{i}"], "gives 'g2', and a VM of that name exists"),
]


def test_bad_input_is_one_clear_error_and_changes_nothing(lab_factory: Callable[..., Lab]) -> None:
    golden = make_golden(lab_factory())
    assert golden.lab.cli("clone", golden.vm, "g2").returncode == 0
    before = _state(golden.lab)
    for args, needle in BAD:
        for dry in ([], ["--dry-run"]):
            got = golden.lab.cli("clone", golden.vm, *args, *dry)
            assert got.returncode == 2, (args, dry, got.stderr)
            assert needle in got.stderr, (args, dry, got.stderr)
            assert "Traceback" not in got.stderr
            lines = [line for line in got.stderr.splitlines() if not line.startswith("hint:")]
            assert len(lines) == 1, got.stderr
            assert got.stdout == ""
    assert _state(golden.lab) == before
    assert_tidy(golden.lab)
