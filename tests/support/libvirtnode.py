"""Extra libvirt nodes for tests, through scripts/libvirt-node (see LAB.md).

    uri = libvirtnode.start("csi-vm-test-b")
    ...
    libvirtnode.stop("csi-vm-test-b")

`kill_daemon` and `start_daemon` crash and restart a node's libvirtd alone
(qemu keeps running), for tests of what survives a daemon restart; `frozen`
stops it with SIGSTOP (a hung daemon) and always sends SIGCONT on the way out.

The system libvirtd (scripts/libvirtd-start) must already run: `require_system`
fails the test with what to do when it does not. VM tests never skip.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from csi_vm import errors
from launcher import libvirt_conn

_SCRIPTS = pathlib.Path(__file__).resolve().parents[2] / "scripts"
_TIMEOUT_S = 90


def require_system() -> libvirt_conn.Connection:
    """An open connection to qemu:///system, or a failed test that says how to get one."""
    try:
        return libvirt_conn.Connection.open(libvirt_conn.SYSTEM_URI)
    except errors.Unreachable as err:
        pytest.fail(
            f"VM tests need the system libvirtd: {err}. "
            "Run `sudo scripts/libvirtd-start` first (.ci/run does).",
            pytrace=False,
        )


def _script(*args: str) -> str:
    done = subprocess.run(
        [str(_SCRIPTS / "libvirt-node"), *args],
        capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"scripts/libvirt-node {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def start(name: str) -> str:
    """Start (or find running) the node and return its URI."""
    _continue_if_stopped(name)
    return _script("start", name).splitlines()[-1]


def _continue_if_stopped(name: str) -> None:
    """A test run killed inside `frozen` left the daemon stopped: continue it."""
    try:
        pid = daemon_pid(name)
        stopped = _proc_state(pid) == "T"
    except (OSError, ValueError):
        return  # no daemon, or one that just went: the script starts a new one
    if stopped:
        os.kill(pid, signal.SIGCONT)


def stop(name: str) -> None:
    _script("stop", name)


def _node_dir(name: str) -> pathlib.Path:
    return pathlib.Path(os.environ.get("CSI_VM_NODES_DIR", "/var/lib/csi-vm/nodes")) / name


def kill_daemon(name: str) -> None:
    """SIGKILL the node's libvirtd, as a crash would; its qemu processes keep running."""
    pid = int((_node_dir(name) / "libvirtd.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + _TIMEOUT_S
    while pathlib.Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def daemon_pid(name: str) -> int:
    return int((_node_dir(name) / "libvirtd.pid").read_text().strip())


def _proc_state(pid: int) -> str:
    # the state letter follows the command name in parentheses
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@contextlib.contextmanager
def frozen(name: str) -> Iterator[int]:
    """The node's libvirtd stopped (SIGSTOP) inside the block, continued (SIGCONT) after it.

    Yields once the kernel reports the daemon stopped ("T"), so the caller
    knows the freeze is in force.
    """
    pid = daemon_pid(name)
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + _TIMEOUT_S
        while _proc_state(pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def start_daemon(name: str) -> None:
    """Start the node's libvirtd again, in the node's mount namespace (kept by its virtlogd).

    `scripts/libvirt-node start` would set up a fresh namespace and stop the
    node's virtlogd; a restarted daemon must see the same /run/libvirt as the
    one that died, where the running domains' status files are.
    """
    node = _node_dir(name)
    logd = int((node / "virtlogd.pid").read_text().strip())
    for stale in ("libvirt-sock", "libvirt-sock-ro", "libvirt-admin-sock"):
        (node / "run" / stale).unlink(missing_ok=True)
    (node / "libvirtd.pid").unlink(missing_ok=True)
    subprocess.run(
        ["nsenter", f"--mount=/proc/{logd}/ns/mnt", "--", "libvirtd", "-d",
         "-p", str(node / "libvirtd.pid")],
        check=True, timeout=_TIMEOUT_S,
    )  # fmt: skip
    uri = (node / "uri").read_text().strip()
    deadline = time.monotonic() + _TIMEOUT_S
    while time.monotonic() < deadline:
        answered = subprocess.run(
            ["virsh", "-c", uri, "version"], capture_output=True, timeout=10, check=False
        )
        if answered.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"libvirtd of node {name} did not come back on {uri}")
