"""Host operations with a recording runner and fake kernel state files."""

from __future__ import annotations

import errno
import pathlib
from collections.abc import Sequence

import pytest

from csi_vm.localdriver import hostops, kernel

MOUNTINFO = (
    "24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw\n"
    "40 27 7:3 / /srv/stage\\040one rw,relatime - ext4 /dev/loop3 rw\n"
    "41 27 7:3 / /srv/target rw,relatime shared:1 - ext4 /dev/loop3 rw\n"
    "42 27 0:6 /loop3 /srv/block ro,relatime - devtmpfs devtmpfs rw\n"
)


class Recorder:
    def __init__(self, answers: dict[str, hostops.Result] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.answers = answers or {}

    def __call__(self, args: Sequence[str]) -> hostops.Result:
        self.calls.append(list(args))
        return self.answers.get(args[0], hostops.Result(0, "", ""))


class KernelRecorder(hostops.Kernel):
    """Records kernel calls; ``fail`` makes the named call fail as the kernel would."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = fail

    def _record(self, *call: str) -> None:
        self.calls.append(call)
        if call[0] == self.fail:
            raise kernel.KernelCallFailed(errno.EBUSY, f"{call[0]} {call[1]}: busy")

    def loop_attach(self, image: str, *, read_only: bool) -> str:
        self._record("loop_attach", image, "ro" if read_only else "rw")
        return "/dev/loop7"

    def loop_detach(self, device: str, *, backing: str | None = None) -> bool:
        self._record("loop_detach", device, *([backing] if backing else []))
        return True

    def loop_set_capacity(self, device: str) -> None:
        self._record("loop_set_capacity", device)

    def bind(self, source: str, target: str, *, read_only: bool) -> None:
        self._record("bind", source, target, "ro" if read_only else "rw")

    def umount(self, target: str) -> None:
        self._record("umount", target)


def _host(
    tmp_path: pathlib.Path, runner: Recorder, calls: KernelRecorder | None = None
) -> hostops.Host:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t000001fffeffffff\n")
    return hostops.Host(
        runner,
        kernel_calls=calls or KernelRecorder(),
        sys_block=tmp_path / "block",
        mountinfo=info,
        proc_status=status,
    )


def test_parse_mountinfo_unescapes_and_splits() -> None:
    entries = hostops.parse_mountinfo(MOUNTINFO)
    assert entries[1].mountpoint == "/srv/stage one"
    assert entries[1].source == "/dev/loop3"
    assert entries[1].fs_type == "ext4"
    assert entries[3].root == "/loop3"


def test_mounts_at_and_of(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path, Recorder())
    assert [e.mountpoint for e in host.mounts_of("/dev/loop3")] == ["/srv/stage one", "/srv/target"]
    assert host.mounts_at("/srv/target")[0].device == "7:3"
    assert host.mounts_at("/nowhere") == []


def test_loops_backing_reads_sysfs(tmp_path: pathlib.Path) -> None:
    image = tmp_path / "vol.img"
    image.write_bytes(b"")
    for name, backing in (("loop0", "/elsewhere.img"), ("loop5", str(image))):
        (tmp_path / "block" / name / "loop").mkdir(parents=True)
        (tmp_path / "block" / name / "loop" / "backing_file").write_text(backing + "\n")
    (tmp_path / "block" / "loop5" / "ro").write_text("1\n")
    host = _host(tmp_path, Recorder())
    assert host.loops_backing(image) == ["/dev/loop5"]
    assert host.loop_is_read_only("/dev/loop5")


def test_live_loops_leave_out_a_device_being_detached(tmp_path: pathlib.Path) -> None:
    """A detach of a device held open only sets autoclear; sysfs still shows its backing."""
    image = tmp_path / "vol.img"
    image.write_bytes(b"")
    for name, autoclear in (("loop2", "1"), ("loop3", "0"), ("loop4", None)):
        (tmp_path / "block" / name / "loop").mkdir(parents=True)
        (tmp_path / "block" / name / "loop" / "backing_file").write_text(f"{image}\n")
        if autoclear is not None:
            (tmp_path / "block" / name / "loop" / "autoclear").write_text(autoclear + "\n")
    host = _host(tmp_path, Recorder())
    assert host.loops_backing(image) == ["/dev/loop2", "/dev/loop3", "/dev/loop4"]
    assert host.live_loops_backing(image) == ["/dev/loop3"]  # loop4: gone meanwhile


def test_commands_are_argument_lists(tmp_path: pathlib.Path) -> None:
    runner, calls = Recorder(), KernelRecorder()
    host = _host(tmp_path, runner, calls)
    assert host.attach_loop(pathlib.Path("/s/v.img"), read_only=True) == "/dev/loop7"
    host.bind("/dev/loop7", "/t", read_only=True)
    host.make_fs("/dev/loop7", "xfs")
    host.mount("/dev/loop7", "/m", fs_type="ext4", options=["ro", "noatime"])
    host.refresh_loop("/dev/loop7")
    host.detach_loop("/dev/loop7", image=pathlib.Path("/s/v.img"))
    assert runner.calls == [
        ["mkfs.xfs", "-f", "-q", "/dev/loop7"],
        ["mount", "-t", "ext4", "-o", "ro,noatime", "/dev/loop7", "/m"],
    ]
    assert calls.calls == [
        ("loop_attach", "/s/v.img", "ro"),
        ("bind", "/dev/loop7", "/t", "ro"),
        ("loop_set_capacity", "/dev/loop7"),
        ("loop_detach", "/dev/loop7", "/s/v.img"),
    ]


def test_unmount_removes_every_stacked_mount(tmp_path: pathlib.Path) -> None:
    calls = KernelRecorder()
    host = _host(tmp_path, Recorder(), calls)
    mounts = (tmp_path / "mountinfo").read_text().splitlines(keepends=True)

    def umount(target: str) -> None:
        calls.calls.append(("umount", target))
        # the kernel drops the topmost mount at the target
        (tmp_path / "mountinfo").write_text("".join(m for m in mounts if " /srv/target " not in m))

    calls.umount = umount  # type: ignore[method-assign]
    host.unmount("/srv/target")
    host.unmount("/srv/nothing-here")
    assert calls.calls == [("umount", "/srv/target")]


def test_failure_names_the_command_and_its_error(tmp_path: pathlib.Path) -> None:
    runner = Recorder({"mkfs.xfs": hostops.Result(1, "", "mkfs.xfs: cannot open /x\n")})
    host = _host(tmp_path, runner)
    with pytest.raises(hostops.HostCommandFailed, match=r"mkfs\.xfs -f -q /x failed"):
        host.make_fs("/x", "xfs")


def test_a_failed_kernel_call_is_a_host_failure(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path, Recorder(), KernelRecorder(fail="loop_detach"))
    with pytest.raises(hostops.HostCommandFailed, match="loop_detach /dev/loop1: busy"):
        host.detach_loop("/dev/loop1")


def test_probe_tolerates_nothing_found(tmp_path: pathlib.Path) -> None:
    runner = Recorder({"blkid": hostops.Result(2, "", "")})
    assert _host(tmp_path, runner).probe("/dev/loop1") == {}
    runner.answers["blkid"] = hostops.Result(0, "DEVNAME=/dev/loop1\nTYPE=ext4\n", "")
    assert _host(tmp_path, runner).probe("/dev/loop1")["TYPE"] == "ext4"


def test_capability_bits(tmp_path: pathlib.Path) -> None:
    host = _host(tmp_path, Recorder())
    assert not host.can_resize_ext4_online()  # bit 24 is clear in the fake CapEff
    (tmp_path / "status").write_text("CapEff:\t000001ffffffffff\n")
    assert host.can_resize_ext4_online()
