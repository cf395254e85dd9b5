"""`--dry-run` runs every check the real command runs, short of changing anything.

So a dry run that passes means the real command gets past its checks, and
one the real command would refuse is refused with the same exit code.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable

import pytest
import yaml

from csi_vm.store import records, running
from tests.integration.flows.conftest import MIB, Lab, pattern_image

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _spec(lab: Lab, name: str, **disk: object) -> pathlib.Path:
    path = lab.tmp / f"{name}.yaml"
    root = {"name": "root", "driver": "local", **disk}
    path.write_text(yaml.safe_dump({"name": name, "disks": [root]}))
    return path


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    """vm1 (block, 4 MiB) and fs1 (filesystem mode, 32 MiB), both stopped, one snapshot."""
    lab = lab_factory()
    for name, disk in (
        ("vm1", {"size": "4MiB"}),
        ("fs1", {"size": "32MiB", "mode": "filesystem"}),
    ):
        made = lab.cli("vm", "create", "-f", str(_spec(lab, name, **disk)), "-o", "json")
        assert made.returncode == 0, made.stderr
    snap = lab.cli("snapshot", "create", "vm1", "--name", "s1", "-o", "json")
    assert snap.returncode == 0, snap.stderr
    return lab


def _state(lab: Lab) -> object:
    vms = [(v.name, [d.volume_id for d in v.disks]) for v in records.list_vms(lab.env.store)]
    snaps = [s.name for s in records.list_snapshots(lab.env.store)]
    return vms, snaps, running.list_all(lab.env.store), lab.inventory()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["disk", "import", "vm1", "root", "{big}"], "more than disk vm1/root"),
        (["disk", "import", "vm1", "root", "{tmp}/none.raw"], "none.raw"),
        (["disk", "export", "vm1", "root", "{tmp}/taken.raw"], "exists"),
        (["disk", "export", "vm1", "root", "{tmp}/no/dir.raw"], "does not exist"),
        (["snapshot", "create", "vm1", "--name", "s1"], "a snapshot named 's1' exists"),
        (["snapshot", "create", "vm1", "--name", "a b"], "snapshot name"),
        (["snapshot", "restore", "s1", "--as", "fs1"], "a VM named 'fs1' exists"),
        (["snapshot", "restore", "s1", "--as", "../x"], "VM name"),
        (["vm", "create", "-f", "{tmp}/vm1.yaml"], "a VM named 'vm1' exists"),
        (["vm", "create", "-f", "{tmp}/toobig.yaml"], "more than the disk's size"),
        (["vm", "start", "nosuch"], "no VM named 'nosuch'"),
        (["vm", "stop", "vm1"], "is not running"),
        (["migrate", "vm1", "--to", "node-b"], "is not running"),
        (["migrate", "vm1", "--to", "node-b", "--cold"], "--allow-downtime"),
    ],
    ids=[
        "import-too-large",
        "import-missing",
        "export-over-a-file",
        "export-no-dir",
        "snapshot-name-taken",
        "snapshot-bad-name",
        "restore-as-existing",
        "restore-as-bad-name",
        "create-existing",
        "create-image-too-large",
        "start-unknown",
        "stop-stopped",
        "migrate-stopped",
        "migrate-cold-without-downtime",
    ],
)
def test_a_dry_run_refuses_what_the_real_command_refuses(
    lab: Lab, args: list[str], needle: str
) -> None:
    big = lab.tmp / "big.raw"
    pattern_image(big, size=8 * MIB, seed=1)
    (lab.tmp / "taken.raw").write_bytes(b"mine")
    _spec(lab, "toobig", size="4MiB", source={"image": str(big)})
    filled = [a.format(tmp=lab.tmp, big=big) for a in args]
    before = _state(lab)
    dry = lab.cli(*filled, "--dry-run")
    assert dry.returncode == 2, dry.stderr
    assert needle in dry.stderr and "Traceback" not in dry.stderr
    assert _state(lab) == before
    real = lab.cli(*filled)
    assert (real.returncode, needle in real.stderr) == (2, True), real.stderr
    assert _state(lab) == before
    assert (lab.tmp / "taken.raw").read_bytes() == b"mine"


def test_a_filesystem_disk_takes_a_smaller_image_as_its_dry_run_said(lab: Lab) -> None:
    image = lab.tmp / "small.raw"
    want = pattern_image(image, size=16 * MIB, seed=7)
    dry = lab.cli("disk", "import", "fs1", "root", str(image), "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["disks"][0]["strategy"] == "filesystem-image"
    done = lab.cli("disk", "import", "fs1", "root", str(image), "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["disks"][0]["strategy"] == "filesystem-image"
    out = lab.tmp / "out.raw"
    exported = lab.cli("disk", "export", "fs1", "root", str(out), "-o", "json")
    assert exported.returncode == 0, exported.stderr
    got = out.read_bytes()
    assert len(got) == 32 * MIB
    assert got[: len(want)] == want and not any(got[len(want) :])


def test_vm_start_has_a_dry_run(lab: Lab) -> None:
    before = _state(lab)
    dry = lab.cli("vm", "start", "vm1", "--dry-run", "-o", "json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] is True and plan["detail"] == "on node-a"
    assert plan["disks"][0]["strategy"] == "csi-publish"
    assert _state(lab) == before
