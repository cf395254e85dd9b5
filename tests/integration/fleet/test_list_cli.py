"""`csi-vm vm list` of a fleet of several pages, as the real command prints it into a pipe."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml

from csi_vm.store import db, records
from tests.support import fleet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: three pages and a bit: page edges inside the list
COUNT = 3 * records.PAGE + 17
#: VMs with a snapshot, all taken in the same second: more than a page
SNAPSHOTS = records.PAGE + 5


@pytest.fixture(scope="module")
def fleet_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("fleet")
    store = db.Store(base / "csi-vm.db")
    fleet.seed(store, count=COUNT)
    fleet.seed_snapshots(store, vms=SNAPSHOTS, each=1)
    store.close()
    (base / "config.yaml").write_text("drivers: {}\n")
    env = {
        **os.environ,
        "CSI_VM_CONFIG": str(base / "config.yaml"),
        "CSI_VM_DB": str(base / "csi-vm.db"),
        "CSI_VM_STATE_DIR": str(base / "state"),
    }
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        env.pop(name, None)
    return env


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


NAMES = [fleet.name(i) for i in range(COUNT)]


def test_the_table_has_every_vm_once_in_order_under_one_header(
    fleet_env: dict[str, str],
) -> None:
    lines = _cli(fleet_env, "vm", "list").splitlines()
    assert lines[0].split()[:3] == ["NAME", "RUNNING", "ON"]
    assert [line.split()[0] for line in lines[1:]] == NAMES
    # Every row is aligned with the header: the fleet's values are as wide
    # on every page.
    assert {line.index("256 MiB") for line in lines[1:]} == {lines[0].index("MEMORY")}
    running = [line.split()[1] for line in lines[1:]]
    assert running == ["node-a" if i % fleet.RUNNING_EVERY == 0 else "-" for i in range(COUNT)]


def test_no_headers_and_wide(fleet_env: dict[str, str]) -> None:
    lines = _cli(fleet_env, "vm", "list", "--no-headers", "-o", "wide").splitlines()
    assert [line.split()[0] for line in lines] == NAMES
    assert all(line.endswith(f"data=seed-{line.split()[0]}-data") for line in lines)


def test_json_yaml_and_name_hold_every_vm_once_in_order(fleet_env: dict[str, str]) -> None:
    listed = json.loads(_cli(fleet_env, "vm", "list", "-o", "json"))
    assert [vm["name"] for vm in listed] == NAMES
    assert yaml.safe_load(_cli(fleet_env, "vm", "list", "-o", "yaml")) == listed
    assert _cli(fleet_env, "vm", "list", "-o", "name").splitlines() == [f"vm/{n}" for n in NAMES]
    # An item of the list is what `vm show` says of that VM.
    middle = COUNT // 2
    assert json.loads(_cli(fleet_env, "vm", "show", NAMES[middle], "-o", "json")) == listed[middle]
    assert listed[middle]["disks"][1]["volume_id"] == f"seed-{NAMES[middle]}-data"


def test_an_empty_store_lists_a_header_an_empty_json_list_and_no_names(
    tmp_path: pathlib.Path, fleet_env: dict[str, str]
) -> None:
    empty = {**fleet_env, "CSI_VM_DB": str(tmp_path / "empty.db")}
    assert _cli(empty, "vm", "list").split() == [
        "NAME",
        "RUNNING",
        "ON",
        "VCPUS",
        "MEMORY",
        "DISKS",
    ]
    assert json.loads(_cli(empty, "vm", "list", "-o", "json")) == []
    assert yaml.safe_load(_cli(empty, "vm", "list", "-o", "yaml")) == []
    assert _cli(empty, "vm", "list", "-o", "name") == ""


def test_snapshot_list_has_every_snapshot_once_oldest_first(fleet_env: dict[str, str]) -> None:
    taken = [f"{fleet.name(i)}-snap-0" for i in range(SNAPSHOTS)]
    lines = _cli(fleet_env, "snapshot", "list").splitlines()
    assert lines[0].split() == ["NAME", "VM", "CREATED", "DISKS"]
    assert [line.split()[0] for line in lines[1:]] == taken
    listed = json.loads(_cli(fleet_env, "snapshot", "list", "-o", "json"))
    assert [s["name"] for s in listed] == taken
    names = _cli(fleet_env, "snapshot", "list", "-o", "name").splitlines()
    assert names == [f"snapshot/{n}" for n in taken]
    one = _cli(fleet_env, "snapshot", "list", fleet.name(3), "--no-headers").splitlines()
    assert [line.split()[:2] for line in one] == [[taken[3], fleet.name(3)]]


@pytest.mark.parametrize(
    "args", [["vm", "list"], ["vm", "list", "-o", "json"], ["snapshot", "list"]], ids=" ".join
)
def test_a_reader_that_stops_reading_ends_the_list_quietly(
    fleet_env: dict[str, str], args: list[str]
) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "csi_vm", *args],
        env=fleet_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()  # then leave, as `| head -1` does
        proc.stdout.close()
        assert proc.wait(timeout=120) == 0
        assert proc.stderr.read() == b""
