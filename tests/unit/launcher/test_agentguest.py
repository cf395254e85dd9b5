"""The agent guest's build inputs, against a fake host."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import pytest

from csi_vm import errors
from launcher import agentguest, guest

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibglib-2.0.so.0 => /lib/x86_64-linux-gnu/libglib-2.0.so.0 (0x00007f6b1c7d5000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6b1c50b000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f6b1ca5a000)
"""
#: merged /usr: dpkg knows libc under /lib and glib under /usr/lib
SHIPS = {
    "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0": "libglib2.0-0:amd64",
    "/lib/x86_64-linux-gnu/libc.so.6": "libc6:amd64",
}


def fake_host(args: Sequence[str], cwd: pathlib.Path | None) -> str:
    if args[0] == "ldd":
        return LDD
    if args[:2] == ["dpkg-query", "-S"] and args[2] in SHIPS:
        return f"{SHIPS[args[2]]}: {args[2]}\n"
    raise errors.OperationFailed(f"{args[0]} failed")


def test_ldd_names_the_libraries_and_the_loader_but_not_the_vdso() -> None:
    libs = agentguest._libraries(pathlib.Path("qemu-ga"), run=fake_host)
    assert [p.name for p in libs] == ["libglib-2.0.so.0", "libc.so.6", "ld-linux-x86-64.so.2"]


@pytest.mark.parametrize(
    ("lib", "package"),
    [("/lib/x86_64-linux-gnu/libglib-2.0.so.0", "libglib2.0-0"),
     ("/lib/x86_64-linux-gnu/libc.so.6", "libc6")],
    ids=["under-usr", "under-lib"],
)  # fmt: skip
def test_a_library_is_found_in_its_package_under_either_path(lib: str, package: str) -> None:
    assert agentguest._package_of(pathlib.Path(lib), run=fake_host) == package


def test_a_library_ldd_cannot_find_is_a_clear_error() -> None:
    def missing(args: Sequence[str], cwd: pathlib.Path | None) -> str:
        return "\tliburing.so.2 => not found\n"

    with pytest.raises(errors.Unsupported, match="libraries missing"):
        agentguest._libraries(pathlib.Path("qemu-ga"), run=missing)


def test_the_agent_guest_has_its_own_cache_key_and_the_raw_guest_keeps_its_own() -> None:
    kernel, busybox = guest.Package("k", "1"), guest.Package("b", "1")
    raw = guest._key(kernel, busybox)
    agent = guest._key(kernel, busybox, guest.Package("qemu-guest-agent", "7"))
    assert raw != agent
    assert agent != guest._key(kernel, busybox, guest.Package("qemu-guest-agent", "8"))


def test_the_agent_guest_counts_in_a_file_on_ext4_and_runs_the_agent_on_its_port() -> None:
    script = agentguest.init_script(("virtio_blk", "virtio_console"))
    assert "mount -t ext4 /dev/vda /mnt" in script
    assert "of=/mnt/counter bs=4096 seek=0" in script
    assert "-p /dev/virtio-ports/org.qemu.guest_agent.0" in script
