"""Start the local reference CSI driver as a real process, for tests.

    drv = start_driver(tmp_path, without=("snapshot",))
    channel = grpc.insecure_channel(drv.endpoint)
    ...
    drv.stop()

`start_driver` returns once the driver answers Identity.Probe on its unix
socket. `stop()` sends SIGTERM (graceful), `kill()` SIGKILL (a crash),
`restart()` starts it again with the same arguments and state dir;
`run_to_exit` runs a driver that should refuse to start. When the
last driver using a state dir stops, loop devices and mounts left on its
images (a failed test's leftovers) are released so the host stays clean.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping

import grpc

from csi_vm.csi.pb import csi_pb2, csi_pb2_grpc
from tests.support import loops

#: unix socket paths must fit in sockaddr_un (108 bytes with the terminating NUL)
_MAX_SOCKET_PATH = 100
#: how long a driver may take to answer its first Probe
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0

_live: dict[pathlib.Path, set[int]] = {}  # state dir -> ids of running DriverProcess


@dataclasses.dataclass
class DriverProcess:
    socket_path: pathlib.Path
    state_dir: pathlib.Path
    node_id: str
    args: list[str]
    log_path: pathlib.Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "driver is not running"
        return self.process.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, *, timeout: float = START_TIMEOUT_S) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        if self.socket_path.exists() and _probe(self.endpoint):
            # Probing the socket would reach that other driver, not ours.
            raise RuntimeError(f"another driver already serves {self.endpoint}")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "csi_vm.localdriver", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        _live.setdefault(self.state_dir, set()).add(id(self))
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"driver exited with {self.process.returncode}:\n{self.log_text()[-4000:]}"
                )
            if self.socket_path.exists() and _probe(self.endpoint):
                return
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"driver not ready after {timeout} s:\n{self.log_text()[-4000:]}")

    def stop(self, *, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Returns the exit code."""
        code = self._end(signal.SIGTERM, timeout)
        self._forget()
        return code

    def kill(self) -> int | None:
        """SIGKILL: the driver gets no chance to clean up, as in a crash."""
        code = self._end(signal.SIGKILL, STOP_TIMEOUT_S)
        self._forget(release=False)
        return code

    def restart(self, *, timeout: float = START_TIMEOUT_S) -> None:
        if self.process is not None and self.process.poll() is None:
            self._end(signal.SIGTERM, STOP_TIMEOUT_S)
        self.start(timeout=timeout)

    def _end(self, signum: int, timeout: float) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def _forget(self, *, release: bool = True) -> None:
        users = _live.get(self.state_dir, set())
        users.discard(id(self))
        if release and not users:
            release_host_resources(self.state_dir)


def _probe(endpoint: str) -> bool:
    with grpc.insecure_channel(endpoint) as channel:
        try:
            csi_pb2_grpc.IdentityStub(channel).Probe(csi_pb2.ProbeRequest(), timeout=2)
        except grpc.RpcError:
            return False
    return True


def _socket_path(base: pathlib.Path, node_id: str) -> pathlib.Path:
    path = base / f"{node_id}.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    return pathlib.Path(tempfile.mkdtemp(prefix="csi-")) / f"{node_id}.sock"


def start_driver(
    tmp_path: pathlib.Path,
    *,
    node_id: str = "node-a",
    shared: bool = False,
    without: Iterable[str] = (),
    advertise_broken: Iterable[str] = (),
    state_dir: pathlib.Path | None = None,
    extra_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> DriverProcess:
    """Start a driver whose socket and log live in tmp_path; ready when this returns."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = state_dir or tmp_path / f"state-{node_id}"
    socket_path = _socket_path(tmp_path, node_id)
    args = ["--endpoint", f"unix://{socket_path}", "--state-dir", str(state)]
    args += ["--node-id", node_id, "--log-level", "DEBUG"]
    if shared:
        args.append("--shared")
    if without := list(without):
        args += ["--without", ",".join(without)]
    if broken := list(advertise_broken):
        args += ["--advertise-broken", ",".join(broken)]
    args += list(extra_args)
    driver = DriverProcess(
        socket_path=socket_path,
        state_dir=state,
        node_id=node_id,
        args=args,
        log_path=tmp_path / f"driver-{node_id}.log",
        env={**os.environ, **(env or {})},
    )
    driver.start(timeout=timeout)
    return driver


def run_to_exit(
    args: Iterable[str], *, timeout: float = START_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run a driver that should refuse to start; its exit code and output."""
    command = [sys.executable, "-m", "csi_vm.localdriver", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _loops_backed_under(directory: pathlib.Path) -> list[str]:
    prefix = os.path.realpath(directory) + os.sep
    found = []
    for backing in pathlib.Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):
            if backing.read_text().startswith(prefix):
                found.append(f"/dev/{backing.parent.parent.name}")
    return found


def _mountpoints_of(devices: set[str]) -> list[str]:
    """Filesystems mounted from the devices, and device nodes bind-mounted (block targets)."""
    nodes = {"/" + pathlib.Path(d).name for d in devices}
    points = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        bound_node = tail[0] == "devtmpfs" and fields[3] in nodes
        if tail[1] in devices or bound_node:
            points.append(fields[4].replace("\\040", " "))
    return points


def release_host_resources(state_dir: pathlib.Path) -> None:
    """Unmount and detach whatever still uses images under state_dir (test cleanup)."""
    devices = set(_loops_backed_under(state_dir))
    if not devices:
        return
    for point in reversed(_mountpoints_of(devices)):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    for device in devices:
        loops.detach_under(device, state_dir)
