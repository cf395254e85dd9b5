"""A fan-out lab: the flows lab (real local driver over gRPC, loop devices) with a stopped VM."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
import yaml

from csi_vm.copy import plan
from csi_vm.flows import offline_disk
from csi_vm.store import journal, records
from tests.integration.flows.conftest import MIB, Lab, lab_factory, pattern_image
from tests.integration.flows.test_crash_resume import _referenced

__all__ = ["lab_factory"]

SIZE = 4 * MIB
#: the driver's switches that leave each rung of the clone ladder on top
LADDERS = {
    "csi-clone": (),
    "snapshot-restore": ("clone",),
    "host-copy": ("clone", "snapshot"),
}


@dataclasses.dataclass
class Golden:
    lab: Lab
    vm: str
    data: bytes  # the disk's bytes

    def fanout(self, *args: str) -> dict[str, object]:
        """Run a fan-out of the golden VM with -o json; its output."""
        got = self.lab.cli("clone", self.vm, *args, "-o", "json")
        assert got.returncode == 0, got.stderr
        out: dict[str, object] = json.loads(got.stdout)
        return out

    def export(self, vm: str) -> bytes:
        out = self.lab.tmp / f"check-{vm}.raw"
        out.unlink(missing_ok=True)
        offline_disk.export(self.lab.env, vm=vm, disk="root", file=out, fmt="raw")
        return out.read_bytes()

    def data_bytes(self) -> int:
        """What a sparse copy of the disk writes: its non-zero blocks, counted here."""
        return plan.total(plan.data_runs(self.data, length=len(self.data)))


def make_golden(lab: Lab, *, name: str = "gold", mode: str = "block") -> Golden:
    image = lab.tmp / f"{name}.raw"
    data = pattern_image(image, size=SIZE, seed=7)
    disk = {"name": "root", "size": SIZE, "driver": "local", "mode": mode,
            "source": {"image": str(image)}}  # fmt: skip
    spec_file = lab.tmp / f"{name}.yaml"
    spec_file.write_text(yaml.safe_dump({"name": name, "disks": [disk]}))
    made = lab.cli("vm", "create", "-f", str(spec_file))
    assert made.returncode == 0, made.stderr
    return Golden(lab=lab, vm=name, data=data)


@pytest.fixture(params=sorted(LADDERS), ids=sorted(LADDERS))
def ladder(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def golden(ladder: str, lab_factory: Callable[..., Lab]) -> Golden:
    return make_golden(lab_factory(LADDERS[ladder]))


def assert_tidy(lab: Lab) -> None:
    """No orphaned volume or snapshot, no unfinished flow, no lock, nothing attached."""
    assert lab.inventory() == _referenced(lab), "orphaned or missing CSI objects"
    assert not journal.interrupted(lab.env.store)
    locks = lab.env.store.connection().execute("SELECT COUNT(*) FROM vm_locks").fetchone()[0]
    assert locks == 0
    attach = lab.state_dir / "attach"
    leftovers = (
        [p for p in attach.rglob("*") if p.is_file() or p.is_mount()] if attach.exists() else []
    )
    assert not leftovers, leftovers


def vm_names(lab: Lab) -> set[str]:
    return {vm.name for vm in records.list_vms(lab.env.store)}


def clone_sources(lab: Lab) -> dict[str, str]:
    """Each fan-out clone's source, as its flow recorded it."""
    rows = journal.recent(lab.env.store, limit=1000)
    return {f.vm: f.args["source"] for f in rows if f.kind == "clone" and f.state == journal.DONE}


__all__ += [
    "LADDERS",
    "MIB",
    "SIZE",
    "Golden",
    "Lab",
    "assert_tidy",
    "clone_sources",
    "make_golden",
    "vm_names",
]
