"""Every exit code of csi_vm/cli/main.py's table, from the real `csi-vm` process.

Each case provokes its class for real: a driver without block volumes, a
stopped driver, an image that fails part way through its copy, a store
written by a newer csi-vm, a signal while a command waits.
"""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
import yaml

from csi_vm.store import records
from tests.integration.flows.conftest import MIB, Lab
from tests.support import crash

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "csi_vm", *args]


def _run(
    env: dict[str, str], *args: str, argv: Callable[..., list[str]] = _argv
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv(*args), env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _vm_file(lab: Lab, name: str, **disk: object) -> pathlib.Path:
    path = lab.tmp / f"{name}.yaml"
    root = {"name": "root", "size": "4MiB", "driver": "local", **disk}
    path.write_text(yaml.safe_dump({"name": name, "disks": [root]}))
    return path


@pytest.fixture
def lab(lab_factory: Callable[..., Lab]) -> Lab:
    lab = lab_factory()
    made = _run(lab.cli_env(), "vm", "create", "-f", str(_vm_file(lab, "vm1")), "-o", "json")
    assert made.returncode == 0, made.stderr
    return lab


def _clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_0_success(lab: Lab) -> None:
    result = _run(lab.cli_env(), "vm", "list", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert [vm["name"] for vm in yaml.safe_load(result.stdout)] == ["vm1"]


def test_1_an_unexpected_error(lab: Lab) -> None:
    # A malformed value for the crash tests' hook fails inside the flow, where
    # no error of csi-vm's own is expected: the flow still rolls back, and the
    # user is told it is a bug.
    env = {**lab.cli_env(), crash.ENV: "not-a-number"}
    before = lab.inventory()
    result = _run(env, "snapshot", "create", "vm1", "--name", "s1", argv=crash.command)
    assert result.returncode == 1, result.stderr
    assert "internal error: ValueError" in result.stderr and "--debug" in result.stderr
    _clean(result)
    assert lab.inventory() == before
    debug = _run(env, "--debug", "snapshot", "create", "vm1", "--name", "s1", argv=crash.command)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    # csi-vm itself installs no hook: the same environment runs the flow.
    plain = _run(env, "snapshot", "create", "vm1", "--name", "s1")
    assert plain.returncode == 0, plain.stderr


def test_2_bad_input(lab: Lab) -> None:
    result = _run(lab.cli_env(), "vm", "show", "nosuch")
    assert result.returncode == 2, result.stderr
    assert "no VM named 'nosuch'" in result.stderr
    _clean(result)


def test_3_unsupported_without_fallback(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory(without=("block",))
    spec_file = _vm_file(lab, "blk", mode="block")
    result = _run(lab.cli_env(), "vm", "create", "-f", str(spec_file))
    assert result.returncode == 3, result.stderr
    assert "has no block volumes" in result.stderr and "mode: filesystem" in result.stderr
    _clean(result)
    assert records.list_vms(lab.env.store) == []


def test_4_a_driver_that_does_not_answer(lab: Lab) -> None:
    lab.driver.stop()
    result = _run(lab.cli_env(), "snapshot", "create", "vm1", "--name", "s1")
    assert result.returncode == 4, result.stderr
    assert "UNAVAILABLE" in result.stderr
    _clean(result)
    lab.driver.restart()
    assert _run(lab.cli_env(), "resume").returncode == 0


def test_5_failed_and_rolled_back(lab: Lab) -> None:
    # A qcow2 image whose metadata is sound (qemu-img check passes) but one of
    # whose compressed clusters is garbage: the copy fails part way, and
    # the volume made for it is removed again.
    image = lab.tmp / "damaged.qcow2"
    raw = lab.tmp / "plain.raw"
    raw.write_bytes((b"csi-vm exit code five " * 50000)[:MIB])
    os.truncate(raw, 4 * MIB)
    subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", str(raw), str(image)], check=True)
    _garble_first_compressed_cluster(image)
    before = lab.inventory()
    spec_file = _vm_file(lab, "v5", source={"image": str(image)})
    result = _run(lab.cli_env(), "vm", "create", "-f", str(spec_file))
    assert result.returncode == 5, result.stderr
    assert "Input/output error" in result.stderr
    _clean(result)
    assert lab.inventory() == before
    assert [vm.name for vm in records.list_vms(lab.env.store)] == ["vm1"]


def _garble_first_compressed_cluster(image: pathlib.Path) -> None:
    """Overwrite the data of guest cluster 0 (compressed), leaving every table intact."""
    with image.open("r+b") as stream:
        header = stream.read(48)
        (l1_offset,) = struct.unpack(">Q", header[40:48])
        stream.seek(l1_offset)
        (l2_entry,) = struct.unpack(">Q", stream.read(8))
        stream.seek(l2_entry & ((1 << 56) - 1) & ~511)
        (cluster,) = struct.unpack(">Q", stream.read(8))
        assert cluster >> 62 == 1, "guest cluster 0 is not compressed"
        # 64 KiB clusters: a compressed entry's host offset is its low 54 bits (qcow2 spec)
        stream.seek((cluster & ((1 << 54) - 1)) + 8)
        stream.write(b"\xa5" * 64)


def test_6_stopped_to_protect_data(lab: Lab) -> None:
    with sqlite3.connect(lab.db_file) as conn:
        conn.execute("PRAGMA user_version = 99")
    result = _run(lab.cli_env(), "vm", "list")
    assert result.returncode == 6, result.stderr
    assert "newer than this csi-vm" in result.stderr and "upgrade csi-vm" in result.stderr
    _clean(result)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_130_interrupted(lab: Lab, signum: signal.Signals) -> None:
    """A command waiting for another flow's VM lock is stopped by a signal."""
    with lab.env.store.transaction() as cur:  # a flow of a live process: this test's
        cur.execute(
            "INSERT INTO flows (id, kind, vm, args, state, pid, started, updated)"
            " VALUES ('held', 'test', 'vm1', '{}', 'running', ?, 0, 0)",
            (os.getpid(),),
        )
        cur.execute(
            "INSERT INTO vm_locks (vm, flow, pid) VALUES ('vm1', 'held', ?)", (os.getpid(),)
        )
    proc = subprocess.Popen(
        _argv("snapshot", "create", "vm1", "--name", "s1"),
        env=lab.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_store(proc, lab.db_file)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert records.list_snapshots(lab.env.store) == []


def _wait_for_store(proc: subprocess.Popen[str], db_file: pathlib.Path) -> None:
    """Until the process has the store open: it is past start-up, inside the command."""
    fds = pathlib.Path(f"/proc/{proc.pid}/fd")
    deadline = time.monotonic() + 60
    while not any(_points_to(fd, db_file) for fd in fds.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "csi-vm never opened its store"
        time.sleep(0.01)


def _points_to(fd: pathlib.Path, target: pathlib.Path) -> bool:
    try:
        return os.readlink(fd) == str(target)
    except OSError:
        return False
