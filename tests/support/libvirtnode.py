"""Extra libvirt nodes for tests, through scripts/libvirt-node (see LAB.md).

    uri = libvirtnode.start("csi-vm-test-b")
    ...
    libvirtnode.stop("csi-vm-test-b")

The system libvirtd (scripts/libvirtd-start) must already run: `require_system`
fails the test with what to do when it does not. VM tests never skip.
"""

from __future__ import annotations

import pathlib
import subprocess

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
    return _script("start", name).splitlines()[-1]


def stop(name: str) -> None:
    _script("stop", name)
