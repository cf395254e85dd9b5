"""A new user's walk through the `csi-vm` command line, told as one story.

Everything is what a user would run: two local drivers started with
`csi-vm localdriver` (one full, one without snapshots, clones and
expansion), a config file named by $CSI_VM_CONFIG as the README shows, and
the installed `csi-vm` executable for every step. The store and state live
in the user directories, here pointed into the test's temporary directory.

The story: configure, probe, create, import, snapshot, clone, expand,
export (byte for byte), a typo, a driver that dies in the middle of a
command, recovery with `csi-vm resume`, and removing everything again.
Each step checks the exit code against the table in csi_vm/cli/main.py,
the key words of the message, which stream it went to, and that no
traceback reached the user. One step runs on a real pseudo-terminal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import os
import pathlib
import random
import re
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator

import pytest

from csi_vm import errors
from csi_vm.cli import main
from csi_vm.csi import client as csi_client
from tests.support import driverproc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

MIB = 1024 * 1024
CSI_VM = pathlib.Path(sys.executable).with_name("csi-vm")
#: what many production drivers lack; the full driver has all of it
DEGRADED = "snapshot,clone,expansion"
COMMAND_TIMEOUT_S = 180
BOX = re.compile("[│┃┏┓┗┛━─╭╮╰╯]")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def exit_code(meaning: str) -> int:
    """The code that main.py's documented table gives the line containing `meaning`."""
    assert main.__doc__ is not None
    for line in main.__doc__.split("Exit codes:", 1)[1].splitlines():
        found = re.match(r"\s+(\d+)\s+(.*)", line)
        if found and meaning in found.group(2):
            return int(found.group(1))
    raise AssertionError(f"no exit code documented for {meaning!r}")


OK = exit_code("success")
BAD_INPUT = exit_code("cannot work as given")
NO_ANSWER = exit_code("did not answer")


@dataclasses.dataclass
class LocalDriver:
    """`csi-vm localdriver` run by hand, as the README's user starts one."""

    name: str
    base: pathlib.Path
    without: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.base / self.name}.sock"

    @property
    def state_dir(self) -> pathlib.Path:
        return self.base / f"state-{self.name}"

    def start(self) -> None:
        args = [str(CSI_VM), "localdriver", "--endpoint", self.endpoint]
        args += ["--state-dir", str(self.state_dir), "--node-id", "node-a"]
        args += ["--without", self.without] if self.without else []
        with (self.base / f"{self.name}.log").open("ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        # Ready when it answers Probe: the wait the project's own quickstart does.
        with csi_client.Client(self.endpoint, timeout=2.0) as client:
            client.wait_ready(within=driverproc.START_TIMEOUT_S)

    def kill(self) -> None:
        """SIGKILL: the driver dies without cleaning up, as in a crash."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=driverproc.STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=driverproc.STOP_TIMEOUT_S)
        driverproc.release_host_resources(self.state_dir)

    def leftovers(self) -> list[str]:
        """Volumes and snapshots still on the driver."""
        with csi_client.Client(self.endpoint) as client:
            left = [e.volume.volume_id for e in client.list_volumes()]
            with contextlib.suppress(errors.Unsupported):  # the degraded driver has none
                left += [s.snapshot_id for s in client.list_snapshots()]
        return left


@dataclasses.dataclass
class User:
    """A shell in the work directory, with the environment the README has them set."""

    home: pathlib.Path
    env: dict[str, str]

    def run(self, *args: str, code: int = OK) -> subprocess.CompletedProcess[str]:
        """`csi-vm ARGS` with stdout and stderr in pipes; checks the exit code."""
        done = subprocess.run(
            [str(CSI_VM), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        said = f"csi-vm {' '.join(args)}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        assert done.returncode == code, said
        assert "Traceback" not in done.stdout + done.stderr, said
        return done

    def on_terminal(self, *args: str, code: int = OK, columns: int = 120) -> str:
        """What `csi-vm ARGS` shows on a terminal (both streams), without colours."""
        main_fd, sub_fd = os.openpty()
        # The window size a terminal emulator would set.
        fcntl.ioctl(sub_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        env = {k: v for k, v in self.env.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
        proc = subprocess.Popen(
            [str(CSI_VM), *args],
            env={**env, "TERM": "xterm-256color"},
            cwd=self.home,
            stdin=sub_fd,
            stdout=sub_fd,
            stderr=sub_fd,
        )
        os.close(sub_fd)
        try:
            shown = _read_until_closed(main_fd)
        finally:
            os.close(main_fd)
        assert proc.wait(timeout=COMMAND_TIMEOUT_S) == code, shown
        assert BOX.search(shown), f"no table drawn on the terminal:\n{shown}"
        text = ANSI.sub("", shown).replace("\r\n", "\n")
        assert "Traceback" not in text, text
        return text


def _read_until_closed(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError as err:  # EIO: the last process holding the terminal closed it
            if err.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def walk_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    # Short: unix socket paths end at 108 bytes.
    return tmp_path_factory.mktemp("walk")


@pytest.fixture
def drivers(walk_dir: pathlib.Path) -> Iterator[dict[str, LocalDriver]]:
    started = {
        "fast": LocalDriver("fast", walk_dir),
        "slow": LocalDriver("slow", walk_dir, without=DEGRADED),
    }
    try:
        for drv in started.values():
            drv.start()
        yield started
    finally:
        for drv in started.values():
            drv.stop()


def test_a_new_users_walk(walk_dir: pathlib.Path, drivers: dict[str, LocalDriver]) -> None:
    user = configure(walk_dir, drivers)
    probe(user, drivers["slow"])
    images = create_and_import(user)
    snapshot_clone_expand(user)
    export_byte_for_byte(user, images)
    typos(user)
    flow = driver_down(user, drivers["fast"])
    recovery(user, drivers["fast"], flow)
    remove_everything(user, drivers)


def configure(home: pathlib.Path, drivers: dict[str, LocalDriver]) -> User:
    """The config file names both drivers; $CSI_VM_CONFIG points at it."""
    config = home / "config.yaml"
    lines = ["node: node-a", "drivers:"]
    for name, drv in drivers.items():
        lines += [f"  {name}:", f"    endpoint: {drv.endpoint}"]
    config.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSI_VM_")}
    env.update(
        CSI_VM_CONFIG=str(config),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
    )
    user = User(home=home, env=env)
    assert user.run("vm", "list", "-o", "name").stdout == ""
    # The store is where a user's would be: the user data directory.
    assert (home / "data" / "csi-vm" / "csi-vm.db").is_file()
    return user


def probe(user: User, slow: LocalDriver) -> None:
    """The degraded driver's report: what works, and the fallback of each operation."""
    report = user.run("capabilities", "probe", "--endpoint", slow.endpoint).stdout
    for words in ("Plan", "vm_snapshot", "host-copy", "copy-to-larger"):
        assert words in report, report


def _vm_spec(home: pathlib.Path) -> pathlib.Path:
    spec = home / "web-1.yaml"
    spec.write_text(
        "name: web-1\n"
        "disks:\n"
        "  - {name: root, size: 64Mi, driver: fast}\n"
        "  - {name: data, size: 32Mi, driver: slow, mode: filesystem}\n"
    )
    return spec


def _strategies(table: str) -> dict[str, str]:
    """DISK -> STRATEGY of a plan printed in a pipe: plain columns, a header line."""
    head, *rows = table.strip().splitlines()
    assert head.split()[:3] == ["DISK", "DRIVER", "STRATEGY"], table
    assert not BOX.search(table), table
    return {row.split()[0]: row.split()[2] for row in rows}


def _image(path: pathlib.Path, *, size: int, seed: int) -> None:
    """A sparse raw image made by qemu-img, with random data in a few places."""
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(path), str(size)], check=True)
    rng = random.Random(seed)
    with path.open("r+b") as image:
        for _ in range(6):
            image.seek(rng.randrange(0, size // MIB) * MIB)
            image.write(rng.randbytes(128 * 1024))


def create_and_import(user: User) -> dict[str, bytes]:
    """Plan, create, and fill both disks: a qcow2 into a block disk, a raw into a file disk."""
    spec = _vm_spec(user.home)
    plan = user.run("vm", "create", "-f", str(spec), "--dry-run").stdout
    assert _strategies(plan) == {"root": "blank", "data": "blank"}
    assert user.run("vm", "list", "-o", "name").stdout == "", "a dry run created the VM"
    user.run("vm", "create", "-f", str(spec))
    assert user.run("vm", "list", "-o", "name").stdout.split() == ["vm/web-1"]

    _image(user.home / "root.raw", size=64 * MIB, seed=1)
    subprocess.run(
        ["qemu-img", "convert", "-O", "qcow2", "root.raw", "root.qcow2"],
        cwd=user.home,
        check=True,
    )
    done = user.run("disk", "import", "web-1", "root", "root.qcow2").stdout
    assert _strategies(done) == {"root": "block"}
    # A raw image half the size of a filesystem-mode disk: the rest reads as zeros.
    _image(user.home / "data.raw", size=16 * MIB, seed=2)
    done = user.run("disk", "import", "web-1", "data", "data.raw").stdout
    assert _strategies(done) == {"data": "filesystem-image"}
    return {
        "root": (user.home / "root.raw").read_bytes(),
        "data": (user.home / "data.raw").read_bytes().ljust(32 * MIB, b"\0"),
    }


def snapshot_clone_expand(user: User) -> None:
    """Native on the full driver, the host-copy fallbacks on the degraded one."""
    done = user.run("snapshot", "create", "web-1", "--name", "before-upgrade").stdout
    assert _strategies(done) == {"root": "csi-snapshot", "data": "host-copy"}
    done = user.run("clone", "web-1", "web-2").stdout
    assert _strategies(done) == {"root": "csi-clone", "data": "host-copy"}
    status = user.run("vm", "status", "web-2")
    assert "shut off" in status.stdout, status.stdout
    done = user.run("disk", "expand", "web-1", "root", "96Mi").stdout
    assert _strategies(done) == {"root": "csi-expand"}
    done = user.run("disk", "expand", "web-1", "data", "48Mi").stdout
    assert _strategies(done) == {"data": "copy-to-larger"}
    listed = user.run("vm", "list").stdout
    assert "root (96 MiB block on fast), data (48 MiB filesystem on slow)" in listed, listed


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_byte_for_byte(user: User, images: dict[str, bytes]) -> None:
    """The clone holds the imported images; the grown disks hold them and then zeros."""
    for vm, disk, size in [
        ("web-2", "root", 64 * MIB),
        ("web-2", "data", 32 * MIB),
        ("web-1", "root", 96 * MIB),
        ("web-1", "data", 48 * MIB),
    ]:
        out = user.home / f"{vm}-{disk}.raw"
        done = user.run("disk", "export", vm, disk, out.name)
        assert f"{vm}/{disk}" in done.stdout, done.stdout
        want = images[disk].ljust(size, b"\0")
        assert _sha256(out.read_bytes()) == _sha256(want), f"{vm}/{disk} differs"
    user.run("disk", "export", "web-2", "root", "root-copy.qcow2", "--format", "qcow2")
    converted = user.home / "root-copy.raw"
    subprocess.run(
        ["qemu-img", "convert", "-O", "raw", "root-copy.qcow2", converted.name],
        cwd=user.home,
        check=True,
    )
    assert _sha256(converted.read_bytes()) == _sha256(images["root"])


def typos(user: User) -> None:
    """A misspelt command and a misspelt VM: exit 2, one message naming what is wrong."""
    typo = user.run("snapshot", "craete", "web-1", code=BAD_INPUT)
    assert typo.stdout == ""
    assert "No such command 'craete'" in typo.stderr and "create" in typo.stderr, typo.stderr
    wrong = user.run("clone", "web1", "web-3", code=BAD_INPUT)
    assert wrong.stdout == ""
    assert "no VM named 'web1'" in wrong.stderr, wrong.stderr
    assert "csi-vm vm list" in wrong.stderr, wrong.stderr  # what to do about it
    assert user.run("vm", "list", "-o", "name").stdout.split() == ["vm/web-1", "vm/web-2"]


def driver_down(user: User, fast: LocalDriver) -> str:
    """The full driver dies: the command on it says so in one line; the rest still works."""
    fast.kill()
    failed = user.run("snapshot", "create", "web-1", "--name", "after-upgrade", code=NO_ANSWER)
    assert failed.stdout == ""
    said = failed.stderr.strip().splitlines()
    assert [line for line in said if line.startswith("error:")] == said[:1], failed.stderr
    assert len(said) <= 2, failed.stderr  # the error, and a hint
    assert fast.endpoint in said[0] and "UNAVAILABLE" in said[0], failed.stderr
    assert failed.stderr.count("UNAVAILABLE") == 1, failed.stderr
    assert "csi-vm resume" in failed.stderr, failed.stderr
    flow = re.search(r"flow (snapshot-\w+)", failed.stderr)
    assert flow, failed.stderr
    # Asking the driver itself gives the same answer, as briefly.
    probed = user.run("capabilities", "probe", "-e", fast.endpoint, code=NO_ANSWER)
    assert probed.stdout == ""
    assert probed.stderr.startswith("error:") and len(probed.stderr.splitlines()) <= 2, probed

    # Reading the inventory does not wait on the dead driver: it warns.
    listed = user.run("vm", "list")
    assert listed.stdout.splitlines()[0].split()[:2] == ["NAME", "RUNNING"], listed.stdout
    assert not BOX.search(listed.stdout), listed.stdout
    warning = listed.stderr.strip()
    assert warning.startswith("warning:") and len(warning.splitlines()) == 1, warning
    assert flow.group(1) in warning and "csi-vm resume" in warning, warning
    shown = user.on_terminal("vm", "list")
    assert "web-1" in shown and "web-2" in shown and "csi-vm resume" in shown, shown

    # Work on the driver that still answers goes on.
    done = user.run("disk", "expand", "web-2", "data", "40Mi")
    assert _strategies(done.stdout) == {"data": "copy-to-larger"}
    assert flow.group(1) in done.stderr, done.stderr
    return flow.group(1)


def recovery(user: User, fast: LocalDriver, flow: str) -> None:
    """Driver back, `csi-vm resume` rolls the stuck flow back, the command now succeeds."""
    fast.start()
    resumed = user.run("resume")
    assert f"rolled back snapshot {flow}" in resumed.stdout, resumed.stdout
    assert resumed.stdout.startswith("1 interrupted operation handled\n"), resumed.stdout
    assert user.run("vm", "list").stderr == "", "a warning outlived the resume"
    done = user.run("snapshot", "create", "web-1", "--name", "after-upgrade").stdout
    assert _strategies(done) == {"root": "csi-snapshot", "data": "host-copy"}
    listed = user.run("snapshot", "list", "--no-headers").stdout.splitlines()
    assert [line.split()[0] for line in listed] == ["before-upgrade", "after-upgrade"], listed


def remove_everything(user: User, drivers: dict[str, LocalDriver]) -> None:
    """Snapshots and VMs deleted: nothing is left on either driver, not even the stuck flow's."""
    for snap in ("before-upgrade", "after-upgrade"):
        user.run("snapshot", "delete", snap)
    for vm in ("web-1", "web-2"):
        user.run("vm", "delete", vm)
    assert user.run("vm", "list", "-o", "name").stdout == ""
    for name, drv in drivers.items():
        assert drv.leftovers() == [], f"left behind on {name}"
