"""Starting and stopping local reference driver processes for `csi-vm quickstart`."""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import subprocess
import sys
from collections.abc import Iterator

from csi_vm import errors
from csi_vm.csi import client as csi_client

_READY_WITHIN = 15.0  # seconds; the driver opens SQLite and binds a socket
_STOP_WITHIN = 10.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class LocalDriver:
    name: str
    endpoint: str
    state_dir: pathlib.Path
    node_id: str
    without: tuple[str, ...] = ()


@contextlib.contextmanager
def running(drivers: list[LocalDriver], *, log_dir: pathlib.Path) -> Iterator[None]:
    """Run the drivers for the duration of the block; always stops them."""
    procs: list[tuple[LocalDriver, subprocess.Popen[bytes]]] = []
    try:
        for drv in drivers:
            procs.append((drv, _start(drv, log_dir)))
        for drv, proc in procs:
            _wait_ready(drv, proc, log_dir)
        yield
    finally:
        for _, proc in reversed(procs):
            _stop(proc)


def _start(drv: LocalDriver, log_dir: pathlib.Path) -> subprocess.Popen[bytes]:
    args = [
        sys.executable,
        "-m",
        "csi_vm.localdriver",
        "--endpoint",
        drv.endpoint,
        "--state-dir",
        str(drv.state_dir),
        "--node-id",
        drv.node_id,
    ]
    if drv.without:
        args += ["--without", ",".join(drv.without)]
    log = (log_dir / f"{drv.name}.log").open("wb")
    # The log file handle is inherited by the child and closed here at once.
    with log:
        return subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


def _wait_ready(drv: LocalDriver, proc: subprocess.Popen[bytes], log_dir: pathlib.Path) -> None:
    with csi_client.Client(drv.endpoint, timeout=2.0) as client:
        try:
            client.wait_ready(within=_READY_WITHIN)
        except errors.Unreachable as err:
            tail = _tail(log_dir / f"{drv.name}.log")
            state = (
                f"exited with {proc.returncode}" if proc.poll() is not None else "still starting"
            )
            raise errors.OperationFailed(
                f"local driver {drv.name!r} did not come up ({state}): {tail}"
            ) from err


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: pathlib.Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:]) or "(empty log)"
