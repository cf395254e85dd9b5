"""A driver that goes down mid-flow: the flow is left pending, not retried by every command.

The failing command exits 4 (a driver did not answer) and names the gRPC
error once; read-only commands then only warn that a flow waits for
`csi-vm resume`; changing commands do not wait for that driver again; and
`csi-vm resume` rolls the flow back once the driver is back.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import yaml

from csi_vm.store import journal, records
from tests.integration.flows.conftest import Lab

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    """vm1 with two disks on one driver (one group snapshot); the driver then stopped."""
    lab = lab_factory()
    spec_file = lab.tmp / "vm1.yaml"
    disks = [{"name": n, "size": "4MiB", "driver": "local"} for n in ("a", "b")]
    spec_file.write_text(yaml.safe_dump({"name": "vm1", "disks": disks}))
    created = lab.cli("vm", "create", "-f", str(spec_file), "-o", "json")
    assert created.returncode == 0, created.stderr
    lab.driver.stop()
    return lab


def test_a_failed_rollback_is_left_pending_with_exit_4(lab: Lab) -> None:
    failed = lab.cli("snapshot", "create", "vm1", "--name", "s1")
    assert failed.returncode == 4, failed.stderr
    assert "Traceback" not in failed.stderr
    assert failed.stderr.count("UNAVAILABLE") == 1, failed.stderr
    assert "left pending" in failed.stderr and "csi-vm resume" in failed.stderr
    [flow] = journal.interrupted(lab.env.store)
    assert flow.pending and "could not reach driver 'local'" in flow.error


@pytest.mark.parametrize(
    "args",
    [["vm", "list"], ["vm", "show", "vm1"], ["snapshot", "list"], ["vm", "status", "vm1"]],
    ids=["vm-list", "vm-show", "snapshot-list", "vm-status"],
)
def test_read_only_commands_warn_and_answer(lab: Lab, args: list[str]) -> None:
    assert lab.cli("snapshot", "create", "vm1").returncode == 4
    got = lab.cli("-v", *args, "-o", "json")
    assert got.returncode == 0, got.stderr
    json.loads(got.stdout)
    assert "is unfinished" in got.stderr and "csi-vm resume" in got.stderr
    assert "attempt 1/" not in got.stderr, "a read-only command called the driver"


def test_a_pending_flow_is_not_retried_by_every_command(lab: Lab) -> None:
    assert lab.cli("snapshot", "create", "vm1").returncode == 4
    # A changing command on another object: it settles interrupted flows first,
    # but one already pending is only named, not tried against the dead driver.
    other = lab.cli("-v", "snapshot", "delete", "nosuch")
    assert other.returncode == 2, other.stderr
    assert "is unfinished" in other.stderr
    assert "attempt 1/" not in other.stderr, other.stderr
    # The VM itself stays locked by its pending flow: one clear error, exit 4.
    again = lab.cli("snapshot", "create", "vm1")
    assert again.returncode == 4, again.stderr
    assert "interrupted snapshot" in again.stderr and "csi-vm resume" in again.stderr


def test_resume_while_the_driver_is_down_then_after(lab: Lab) -> None:
    before = lab.cli("snapshot", "create", "vm1")
    assert before.returncode == 4
    still = lab.cli("resume")
    assert still.returncode == 4, still.stderr
    assert still.stderr.count("UNAVAILABLE") == 1, still.stderr
    assert "once driver 'local' answers" in still.stderr
    # What the other tests look for to see that the driver was called: -v shows it.
    assert "attempt 1/" in lab.cli("-v", "resume").stderr
    lab.driver.restart()
    done = lab.cli("resume")
    assert done.returncode == 0, done.stderr
    assert "rolled back snapshot" in done.stdout
    assert not journal.interrupted(lab.env.store)
    assert lab.inventory()[1] == set(), "the rollback left a snapshot on the driver"
    assert records.list_snapshots(lab.env.store) == []
    quiet = lab.cli("vm", "list", "-o", "json")
    assert quiet.returncode == 0 and "unfinished" not in quiet.stderr
