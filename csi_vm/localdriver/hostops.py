"""Every side effect on the host: loop devices, filesystems, mounts.

The one door to the host's storage tools. Commands run from argument lists
(never a shell) through an injectable runner; loop devices, binds and
unmounts go straight to the kernel (`kernel`) through an injectable `Kernel`.
Unit tests record both instead of touching the machine. Reads of kernel state (which loop device
backs which file, what is mounted where) come from sysfs and mountinfo: no
process spawn, no cache to go stale.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence

from csi_vm import errors
from csi_vm.localdriver import kernel

log = logging.getLogger(__name__)

#: capability number of CAP_SYS_RESOURCE (linux/capability.h)
_CAP_SYS_RESOURCE = 24
#: long enough for mkfs or resize of a multi-TiB sparse image on a slow disk
COMMAND_TIMEOUT_S = 300.0


@dataclasses.dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], Result]


class HostCommandFailed(errors.OperationFailed):
    """A host tool (mount, mkfs...) exited non-zero, or a kernel call failed."""


class Kernel:
    """The kernel calls `Host` makes itself; tests hand `Host` a recorder instead."""

    def loop_attach(self, image: str, *, read_only: bool) -> str:
        return kernel.loop_attach(image, read_only=read_only)

    def loop_detach(self, device: str, *, backing: str | None = None) -> bool:
        return kernel.loop_detach(device, backing=backing)

    def loop_set_capacity(self, device: str) -> None:
        kernel.loop_set_capacity(device)

    def bind(self, source: str, target: str, *, read_only: bool) -> None:
        kernel.bind(source, target, read_only=read_only)

    def umount(self, target: str) -> None:
        kernel.umount(target)


def run_command(args: Sequence[str]) -> Result:
    """The default runner: the tool's output is captured, never echoed to our stdout."""
    try:
        done = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise HostCommandFailed(f"{args[0]} could not run: {err}") from err
    return Result(done.returncode, done.stdout, done.stderr)


@dataclasses.dataclass(frozen=True)
class MountEntry:
    mountpoint: str
    device: str  # major:minor of the mounted filesystem
    root: str  # the subtree mounted ('/' unless a bind of a subdirectory)
    fs_type: str
    source: str
    options: tuple[str, ...]


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    entries = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 2:
            continue
        entries.append(
            MountEntry(
                mountpoint=_unescape(fields[4]),
                device=fields[2],
                root=_unescape(fields[3]),
                fs_type=tail[0],
                source=_unescape(tail[1]),
                options=tuple(fields[5].split(",")),
            )
        )
    return entries


class Host:
    """Host storage operations; `runner` and the kernel-state paths are injectable."""

    def __init__(
        self,
        runner: Runner = run_command,
        *,
        kernel_calls: Kernel | None = None,
        sys_block: pathlib.Path = pathlib.Path("/sys/block"),
        mountinfo: pathlib.Path = pathlib.Path("/proc/self/mountinfo"),
        proc_status: pathlib.Path = pathlib.Path("/proc/self/status"),
    ) -> None:
        self._runner = runner
        self._kernel = kernel_calls or Kernel()
        self._sys_block = sys_block
        self._mountinfo = mountinfo
        self._proc_status = proc_status

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> Result:
        result = self._runner(args)
        if result.returncode not in ok:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise HostCommandFailed(
                f"{' '.join(args)} failed (exit {result.returncode}): "
                + (detail[-1] if detail else "no output")
            )
        log.debug("ran %s", " ".join(args))
        return result

    # --- loop devices ----------------------------------------------------------------

    def loops_backing(self, image: pathlib.Path) -> list[str]:
        """Loop devices whose backing file is `image` (from sysfs)."""
        wanted = os.path.realpath(image)
        found = []
        # scandir plus a direct open per device: a pathlib glob stats every
        # sysfs entry and dominated the snapshot path on hosts with many loops.
        for entry in os.scandir(self._sys_block):
            if not entry.name.startswith("loop"):
                continue
            try:
                with open(f"{entry.path}/loop/backing_file") as backing:
                    name = backing.read().rstrip("\n")
            except OSError:  # not attached, or detached meanwhile
                continue
            if name == wanted:
                found.append(f"/dev/{entry.name}")
        return sorted(found)

    def live_loops_backing(self, image: pathlib.Path) -> list[str]:
        """Loop devices backing `image` that the kernel is not about to detach.

        Detaching a device someone holds open (a reader, a probe, qemu) only
        marks it autoclear: it still shows its backing file until the last
        close tears it down. A target bound to it then binds a free number,
        which the next attach of any image takes.
        """
        return [d for d in self.loops_backing(image) if not self._loop_is_detaching(d)]

    def _loop_is_detaching(self, device: str) -> bool:
        flag = self._sys_block / pathlib.Path(device).name / "loop" / "autoclear"
        try:
            # The driver never attaches with autoclear, so a set flag means a detach is pending.
            return flag.read_text().strip() == "1"
        except OSError:  # detached meanwhile
            return True

    def loop_is_read_only(self, device: str) -> bool:
        ro = self._sys_block / pathlib.Path(device).name / "ro"
        return ro.read_text().strip() == "1"

    def attach_loop(self, image: pathlib.Path, *, read_only: bool) -> str:
        with _kernel_call():
            device = self._kernel.loop_attach(str(image), read_only=read_only)
        log.debug("attached %s to %s%s", image, device, " read-only" if read_only else "")
        return device

    def detach_loop(self, device: str, *, image: pathlib.Path | None = None) -> bool:
        """Detach `device` (only while it reads `image`, if given); whether it was.

        A loop still held open (a mount we failed to remove) is only marked
        autoclear by the kernel; it goes away when released.
        """
        backing = str(image) if image is not None else None
        with _kernel_call():
            return self._kernel.loop_detach(device, backing=backing)

    def refresh_loop(self, device: str) -> None:
        """Make the loop device pick up a grown backing file (LOOP_SET_CAPACITY)."""
        with _kernel_call():
            self._kernel.loop_set_capacity(device)

    # --- filesystems -----------------------------------------------------------------

    def probe(self, device: str) -> dict[str, str]:
        """blkid low-level probe: TYPE for a filesystem, PTTYPE for a partition table."""
        out = self.run("blkid", "--probe", "--output", "export", device, ok=(0, 2)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def make_fs(self, device: str, fs_type: str) -> None:
        if fs_type == "xfs":
            self.run("mkfs.xfs", "-f", "-q", device)
        else:
            self.run(f"mkfs.{fs_type}", "-F", "-q", device)

    def grow_fs(self, *, device: str, mountpoint: str, fs_type: str) -> None:
        """Grow a mounted filesystem to its device's size."""
        if fs_type == "xfs":
            self.run("xfs_growfs", mountpoint)  # xfs grows through its mount point
        else:
            self.run("resize2fs", device)

    def ext4_bytes(self, device: str) -> int:
        """Size of the ext4 filesystem on device, from its superblock."""
        out = self.run("dumpe2fs", "-h", device).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return int(fields["Block count"]) * int(fields["Block size"])

    def grow_ext4_offline(self, device: str) -> None:
        """Grow an unmounted ext4; resize2fs insists on a fresh check first."""
        self.run("e2fsck", "-f", "-p", device, ok=(0, 1))  # 1: errors fixed
        self.run("resize2fs", device)

    def can_resize_ext4_online(self) -> bool:
        """The kernel grows a mounted ext4 only for CAP_SYS_RESOURCE holders."""
        for line in self._proc_status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_SYS_RESOURCE & 1)
        return False

    @staticmethod
    def device_bytes(device: str) -> int:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)

    def freeze(self, mountpoint: str) -> None:
        self.run("fsfreeze", "--freeze", mountpoint)

    def thaw(self, mountpoint: str) -> None:
        self.run("fsfreeze", "--unfreeze", mountpoint)

    # --- mounts ----------------------------------------------------------------------

    def mounts_of(self, device: str) -> list[MountEntry]:
        """Every mount of the filesystem on `device` (as mount source)."""
        return [e for e in parse_mountinfo(self._mountinfo.read_text()) if e.source == device]

    def mounts_at(self, path: str) -> list[MountEntry]:
        """Mounts whose mount point is exactly `path`, innermost last."""
        entries = parse_mountinfo(self._mountinfo.read_text())
        return [e for e in entries if e.mountpoint == path]

    def mount(self, device: str, path: str, *, fs_type: str, options: Sequence[str]) -> None:
        args = ["mount", "-t", fs_type]
        if options:
            args += ["-o", ",".join(options)]
        self.run(*args, device, path)

    def bind(self, source: str, path: str, *, read_only: bool) -> None:
        with _kernel_call():
            self._kernel.bind(source, path, read_only=read_only)

    def unmount(self, path: str) -> None:
        """Remove every mount stacked at `path`; nothing to do if none."""
        while self.mounts_at(path):
            with _kernel_call():
                self._kernel.umount(path)


@contextlib.contextmanager
def _kernel_call() -> Iterator[None]:
    try:
        yield
    except kernel.KernelCallFailed as err:
        raise HostCommandFailed(str(err)) from err
