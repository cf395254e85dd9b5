"""The real `csi-vm` command on user mistakes.

One clear line, the documented exit code, no traceback, nothing changed.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest
import yaml

from csi_vm.store import records
from tests.integration.flows.conftest import MIB, Lab, pattern_image, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    lab = lab_factory()
    image = lab.tmp / "a.raw"
    pattern_image(image, size=4 * MIB, seed=3)
    spec_file = lab.tmp / "vm1.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {
                "name": "vm1",
                "disks": [
                    {
                        "name": "root",
                        "size": "4MiB",
                        "driver": "local",
                        "source": {"image": str(image)},
                    }
                ],
            }
        )
    )
    assert lab.cli("vm", "create", "-f", str(spec_file)).returncode == 0
    return lab


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["vm", "show", "nope"], 2, "no VM named 'nope'"),
        (["disk", "expand", "vm1", "root", "1MiB"], 2, "would shrink it"),
        (["disk", "expand", "vm1", "root", "lots"], 2, "is not a size"),
        (["disk", "expand", "vm1", "nope", "8MiB"], 2, "has no disk 'nope'"),
        (["disk", "import", "vm1", "root", "/nonexistent.img"], 2, "/nonexistent.img"),
        (["snapshot", "restore", "none"], 2, "no snapshot named 'none'"),
        (["clone", "vm1", "bad/name"], 2, "VM name"),
        (["clone", "vm1", "vm1"], 2, "exists"),
        (["snapshot", "create", "vm1", "--name", "a b"], 2, "snapshot name"),
        (["snapshot", "restore", "none", "--as", "../x"], 2, "no snapshot named"),
    ],
    ids=[
        "unknown-vm",
        "shrink",
        "bad-size",
        "unknown-disk",
        "missing-image",
        "unknown-snapshot",
        "slash-name",
        "existing-name",
        "space-name",
        "restore-as-bad",
    ],
)
def test_mistakes_give_one_clear_line(lab: Lab, args: list[str], code: int, needle: str) -> None:
    before = lab.inventory()
    result = lab.cli(*args)
    assert result.returncode == code, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert lab.inventory() == before
    assert [vm.name for vm in records.list_vms(lab.env.store)] == ["vm1"]


def test_a_driver_that_is_down(lab: Lab, tmp_path: pathlib.Path) -> None:
    cfg = tmp_path / "down.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {"drivers": {"local": {"endpoint": str(tmp_path / "gone.sock"), "timeout": 1}}}
        )
    )
    spec_file = tmp_path / "vm9.yaml"
    spec_file.write_text(
        yaml.safe_dump(
            {"name": "vm9", "disks": [{"name": "root", "size": "1MiB", "driver": "local"}]}
        )
    )
    env = {**lab.cli_env(), "CSI_VM_CONFIG": str(cfg), "CSI_VM_DB": str(tmp_path / "other.db")}
    result = run_cli(env, "vm", "create", "-f", str(spec_file))
    assert result.returncode == 4, result.stderr
    assert "cannot probe driver 'local'" in result.stderr
    assert "Traceback" not in result.stderr


def test_dry_run_changes_nothing(lab: Lab) -> None:
    before = lab.inventory()
    result = lab.cli("snapshot", "create", "vm1", "--dry-run", "-o", "json")
    assert result.returncode == 0, result.stderr
    plan = yaml.safe_load(result.stdout)
    assert plan["dry_run"] is True
    assert plan["disks"][0]["strategy"] == "csi-snapshot"
    assert lab.inventory() == before
    assert records.list_snapshots(lab.env.store) == []


@pytest.mark.parametrize(
    "command",
    [
        ["vm"],
        ["vm", "create"],
        ["disk", "import"],
        ["disk", "export"],
        ["disk", "expand"],
        ["snapshot", "create"],
        ["snapshot", "restore"],
        ["clone"],
        ["resume"],
        ["capabilities", "probe"],
        ["quickstart"],
        ["localdriver"],
    ],
    ids="-".join,
)
def test_help_teaches(command: list[str]) -> None:
    result = run_cli({}, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout or "usage" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["vm", "delete", "vm1", "--dry-run", "-o", "json"],
        ["disk", "export", "vm1", "root", "{tmp}/out.raw", "--dry-run", "-o", "json"],
        ["disk", "import", "vm1", "root", "{image}", "--dry-run", "-o", "json"],
        ["disk", "expand", "vm1", "root", "8MiB", "--dry-run", "-o", "json"],
        ["clone", "vm1", "vm2", "--dry-run", "-o", "json"],
    ],
    ids=["vm-delete", "export", "import", "expand", "clone"],
)
def test_every_changing_command_has_a_dry_run(lab: Lab, args: list[str]) -> None:
    before = (lab.inventory(), [vm.name for vm in records.list_vms(lab.env.store)])
    filled = [a.format(tmp=lab.tmp, image=lab.tmp / "a.raw") for a in args]
    result = lab.cli(*filled)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["dry_run"] is True
    assert (lab.inventory(), [vm.name for vm in records.list_vms(lab.env.store)]) == before
    assert not (lab.tmp / "out.raw").exists()
