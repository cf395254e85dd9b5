"""Host operations with a recording runner and fake kernel state files."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import pytest

from csi_vm.localdriver import hostops

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


def _host(tmp_path: pathlib.Path, runner: Recorder) -> hostops.Host:
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t000001fffeffffff\n")
    return hostops.Host(runner, sys_block=tmp_path / "block", mountinfo=info, proc_status=status)


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


def test_commands_are_argument_lists(tmp_path: pathlib.Path) -> None:
    runner = Recorder({"losetup": hostops.Result(0, "/dev/loop7\n", "")})
    host = _host(tmp_path, runner)
    assert host.attach_loop(pathlib.Path("/s/v.img"), read_only=True) == "/dev/loop7"
    host.bind("/dev/loop7", "/t", read_only=True)
    host.make_fs("/dev/loop7", "xfs")
    host.mount("/dev/loop7", "/m", fs_type="ext4", options=["ro", "noatime"])
    assert runner.calls == [
        ["losetup", "--find", "--show", "--read-only", "/s/v.img"],
        ["mount", "--bind", "/dev/loop7", "/t"],
        ["mount", "-o", "remount,bind,ro", "/t"],
        ["mkfs.xfs", "-f", "-q", "/dev/loop7"],
        ["mount", "-t", "ext4", "-o", "ro,noatime", "/dev/loop7", "/m"],
    ]


def test_failure_names_the_command_and_its_error(tmp_path: pathlib.Path) -> None:
    runner = Recorder({"losetup": hostops.Result(1, "", "losetup: /x: failed to set up\n")})
    host = _host(tmp_path, runner)
    with pytest.raises(hostops.HostCommandFailed, match="losetup --detach /dev/loop1 failed"):
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
