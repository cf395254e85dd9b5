"""The agent guest: the counter guest plus ext4 and Debian's qemu-guest-agent.

Built by `guest.build(agent=True)` beside the raw counter guest and cached the
same way. Its /init mounts the ext4 filesystem the host put on the first disk
(`fscounter.make_image`), starts qemu-ga on the virtio port libvirt names
`domain.AGENT_CHANNEL`, and writes the counter into a file of that
filesystem with fsync. So a freeze through the agent really freezes a
journaled filesystem that is being written, and `fstrim` has blocks to free.

qemu-ga is dynamically linked: the libraries ldd names on this host are
fetched from their Debian packages (`apt-get download`, `dpkg-deb -x`), never
copied from the host's own root.
"""

from __future__ import annotations

import logging
import pathlib
import re

from csi_vm import errors
from launcher import counter, domain, fscounter, hostcmd, initramfs

log = logging.getLogger(__name__)

PACKAGE = "qemu-guest-agent"
#: virtio_console gives the guest its virtio ports; ext4, jbd2 and crc32c are
#: built into Debian's cloud kernel (modules.builtin), so need no module
MODULES = ("virtio_console",)
#: where the guest mounts its first disk's filesystem
MOUNT = "/mnt"
_BINARY = "usr/sbin/qemu-ga"
_LIB_DIR = "lib/x86_64-linux-gnu"
_LOADER = "lib64/ld-linux-x86-64.so.2"
_LDD_LINE = re.compile(r"^\s*(?:\S+ => )?(/\S+) \(0x[0-9a-f]+\)$")


def entries(
    tree: pathlib.Path, work: pathlib.Path, *, run: hostcmd.Runner
) -> list[initramfs.Entry]:
    """qemu-ga (unpacked in `tree`), the libraries it links, and the dirs it needs."""
    binary = tree / _BINARY
    libs = _libraries(binary, run=run)
    packages = sorted({_package_of(lib, run=run) for lib in libs})
    run(["apt-get", "download", "-q", *packages], work)
    libtree = work / "libs"
    for deb in sorted(work.glob("*.deb")):
        if deb.name.split("_", 1)[0] in packages:
            run(["dpkg-deb", "-x", str(deb), str(libtree)], None)
    dirs = ["lib/x86_64-linux-gnu", "lib64", "mnt", "run", "var"]
    found = [initramfs.directory(d) for d in dirs]
    found.append(initramfs.symlink("var/run", "/run"))
    found.append(initramfs.file(_BINARY, binary.read_bytes(), executable=True))
    for lib in libs:
        dest = _LOADER if lib.name == pathlib.Path(_LOADER).name else f"{_LIB_DIR}/{lib.name}"
        found.append(initramfs.file(dest, _unpacked(libtree, lib).read_bytes(), executable=True))
    return found


def _libraries(binary: pathlib.Path, *, run: hostcmd.Runner) -> list[pathlib.Path]:
    """The shared libraries (loader included) ldd resolves for `binary` on this host."""
    out = run(["ldd", str(binary)], None)
    if "not found" in out:
        raise errors.Unsupported(
            f"{PACKAGE}: libraries missing on this host, so their packages are unknown",
            hint=out.strip(),
        )
    return [pathlib.Path(m[1]) for line in out.splitlines() if (m := _LDD_LINE.match(line))]


def _package_of(lib: pathlib.Path, *, run: hostcmd.Runner) -> str:
    """The package that ships `lib`; with merged /usr, dpkg knows one of two paths."""
    for path in (str(lib), f"/usr{lib}"):
        try:
            out = run(["dpkg-query", "-S", path], None)
        except errors.OperationFailed:
            continue
        return out.split(":", 1)[0].strip()
    raise errors.OperationFailed(f"no installed package ships {lib}")


def _unpacked(libtree: pathlib.Path, lib: pathlib.Path) -> pathlib.Path:
    for path in (libtree / str(lib).lstrip("/"), libtree / "usr" / str(lib).lstrip("/")):
        if path.exists():
            return path  # a symlink inside the tree (libfoo.so.1 -> libfoo.so.1.2) is followed
    raise errors.OperationFailed(f"{lib.name} is not in the package that ships it")


def init_script(modules: tuple[str, ...]) -> str:
    """/init: as the raw counter guest, then mount ext4, start qemu-ga, count in a file."""
    from launcher import guest  # noqa: PLC0415 - guest builds this variant: no import cycle

    device = guest.COUNTER_DEVICE
    return f"""\
#!/bin/sh
# csi-vm counter guest with qemu-guest-agent on ext4
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {" ".join(modules)}; do
  insmod /lib/modules/$m.ko || echo "CSIVMCTR insmod $m failed"
done
{guest.wait_for_disk()}
if ! mount -t ext4 {device} {MOUNT}; then
  echo "CSIVMCTR cannot mount ext4 from {device}: powering off"
  poweroff -f
fi
{_agent()}
{guest.power_button()}
{counter.file_loop(f"{MOUNT}/{fscounter.FILE}", disk=device)}"""


def agent_command() -> str:
    """sh code: qemu-ga in the guest on the agent's port (named as `_agent` names it)."""
    port = f"/dev/virtio-ports/{domain.AGENT_CHANNEL}"
    return f"LD_LIBRARY_PATH=/{_LIB_DIR} /{_BINARY} -m virtio-serial -p {port} -t /run"


def _agent() -> str:
    """sh code: name the virtio ports as udev would, then run qemu-ga on the agent's port."""
    port = f"/dev/virtio-ports/{domain.AGENT_CHANNEL}"
    return f"""\
mkdir -p /dev/virtio-ports
i=0
while [ ! -e {port} ] && [ $i -lt 30 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] && ln -sf "/dev/${{p##*/}}" "/dev/virtio-ports/$(cat "$p/name")"
  done
  i=$((i + 1)); [ -e {port} ] || sleep 0.1
done
if [ -e {port} ]; then
  {agent_command()} &
  echo "CSIVMCTR guest agent started"
else
  echo "CSIVMCTR no {domain.AGENT_CHANNEL} port: no guest agent"
fi"""
