"""Start and stop the cluster's host processes, each with a log and a pid file.

A pid file holds the pid and the process's start time (from /proc), so a
stale file after a reboot or a reused pid never makes `down` signal a
stranger.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence


class DaemonFailed(RuntimeError):
    """A daemon exited or never became ready: the message names its log."""


def _start_time(pid: int) -> str | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def start(
    name: str,
    argv: Sequence[str],
    *,
    run_dir: pathlib.Path,
    log_dir: pathlib.Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` in its own session unless the recorded one still runs."""
    pid = running(name, run_dir=run_dir)
    if pid:
        return pid
    log_dir.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        out.write(f"==== {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
    # posix_spawn, not Popen: the daemon outlives this process, and a Popen
    # object dropped while its child runs is reported as a leaked resource.
    pid = os.posix_spawnp(
        argv[0],
        list(argv),
        dict(env) if env is not None else dict(os.environ),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    (run_dir / f"{name}.pid").write_text(f"{pid} {_start_time(pid)}\n")
    return pid


def running(name: str, *, run_dir: pathlib.Path) -> int | None:
    """The pid of the recorded daemon if that very process still runs."""
    try:
        pid_text, started = (run_dir / f"{name}.pid").read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_text)
    if _start_time(pid) != started or _is_zombie(pid):
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def stop(name: str, *, run_dir: pathlib.Path, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; forget the pid file."""
    pid = running(name, run_dir=run_dir)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while running(name, run_dir=run_dir) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if running(name, run_dir=run_dir):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _reap(pid)
    with contextlib.suppress(FileNotFoundError):
        (run_dir / f"{name}.pid").unlink()


def _reap(pid: int) -> None:
    # Our own child when `up` and `down` run in one process (the tests).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_for(
    what: str,
    ready: Callable[[], bool],
    *,
    name: str,
    run_dir: pathlib.Path,
    log_dir: pathlib.Path,
    timeout: float,
) -> None:
    """Poll ``ready`` until true; fail early, naming the log, if the daemon died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if ready():
                return
        if not running(name, run_dir=run_dir):
            raise DaemonFailed(f"{name} exited before {what}: see {log_dir / f'{name}.log'}")
        time.sleep(0.5)
    raise DaemonFailed(f"{name}: no {what} within {timeout:.0f} s: see {log_dir / f'{name}.log'}")
