"""The counter guest: a Debian cloud kernel and a busybox initramfs, built from packages.

`build()` resolves the current candidates of `linux-image-cloud-amd64` (a
meta package: the kernel is in the versioned package it depends on) and
`busybox-static`, downloads them with `apt-get download`, unpacks them with
`dpkg-deb -x` and packs an initramfs whose /init loads the virtio modules and
runs the counter loop of `launcher.counter`. The result is cached under a key
of the package versions and the init script, so a test run builds it once.
The guest boots under TCG in a few seconds and needs no disk image of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import lzma
import os
import pathlib
import re
import tempfile
from collections.abc import Iterator

import platformdirs

from csi_vm import errors
from launcher import agentguest, counter, hostcmd, initramfs

log = logging.getLogger(__name__)

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
#: the cloud kernel builds virtio as modules; each needs the ones before it
MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_legacy_dev",
    "virtio_pci_modern_dev",
    "virtio_pci",
    "virtio_blk",
)
#: the ACPI power button and the event device it reports through, so that a
#: graceful stop (libvirt's shutdown) powers the guest off
ACPI_MODULES = ("button", "evdev")
#: every module the initramfs carries, in load order
GUEST_MODULES = MODULES + ACPI_MODULES
#: the disk the counter lives on: the domain's first virtio disk
COUNTER_DEVICE = "/dev/vda"
#: serial console for the log; reboot at once on a panic so a dead guest shows
#: in libvirt instead of hanging; quiet because every line costs time under TCG
CMDLINE = "console=ttyS0 panic=-1 quiet"
#: bump when the archive layout changes in a way the init script does not show
_FORMAT = 1
_KERNEL_NAME = re.compile(r"^linux-image-\S+$")


@dataclasses.dataclass(frozen=True)
class Package:
    name: str
    version: str

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}"


@dataclasses.dataclass(frozen=True)
class GuestImage:
    """A built guest: boot it with `kernel`, `initramfs` and `cmdline`."""

    kernel: pathlib.Path
    initramfs: pathlib.Path
    cmdline: str
    key: str


def default_cache_dir() -> pathlib.Path:
    if configured := os.environ.get("CSI_VM_GUEST_CACHE"):
        return pathlib.Path(configured)
    if os.geteuid() == 0:
        return pathlib.Path("/var/cache/csi-vm-guest")
    return pathlib.Path(platformdirs.user_cache_dir("csi-vm")) / "guest"


def build(
    *,
    cache_dir: pathlib.Path | None = None,
    run: hostcmd.Runner = hostcmd.run,
    agent: bool = False,
) -> GuestImage:
    """The guest for the current package candidates, built now or taken from the cache.

    `agent`: the variant with ext4 and qemu-guest-agent (`launcher.agentguest`).
    """
    root = cache_dir or default_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        try:
            return _cached_or_built(root, *_resolve_all(run, agent=agent), run=run)
        except errors.OperationFailed as err:
            # Stale package lists name versions the mirror no longer has.
            log.info("guest build failed (%s): refreshing package lists and retrying", err)
            run(["apt-get", "update", "-q"], None)
            return _cached_or_built(root, *_resolve_all(run, agent=agent), run=run)


def _resolve_all(run: hostcmd.Runner, *, agent: bool) -> tuple[Package, Package, Package | None]:
    kernel, busybox = resolve(run)
    return kernel, busybox, _candidate(agentguest.PACKAGE, run)[0] if agent else None


def _cached_or_built(
    root: pathlib.Path,
    kernel: Package,
    busybox: Package,
    agent: Package | None,
    *,
    run: hostcmd.Runner,
) -> GuestImage:
    key = _key(kernel, busybox, agent)
    final = root / key
    if not (final / "manifest.json").exists():
        log.info("building the counter guest %s", key)
        with tempfile.TemporaryDirectory(dir=root, prefix=".build-") as work:
            packages = [p for p in (kernel, busybox, agent) if p is not None]
            out = _build_in(pathlib.Path(work), packages=packages, agent=agent is not None, run=run)
            _write_manifest(out, packages=packages)
            out.rename(final)  # atomic: a cache entry is complete or absent
    return GuestImage(final / "vmlinuz", final / "initramfs.img", CMDLINE, key)


def resolve(run: hostcmd.Runner = hostcmd.run) -> tuple[Package, Package]:
    """(kernel package, busybox package) at their candidate versions."""
    try:
        meta = _candidate(KERNEL_META_PACKAGE, run)
    except errors.OperationFailed:
        # A machine set up long ago (or never) may have no package lists yet.
        log.info("no candidate for %s: running apt-get update", KERNEL_META_PACKAGE)
        run(["apt-get", "update", "-q"], None)
        meta = _candidate(KERNEL_META_PACKAGE, run)
    kernel = _kernel_dependency(meta, run)
    return kernel, _candidate(BUSYBOX_PACKAGE, run)[0]


def _candidate(name: str, run: hostcmd.Runner) -> tuple[Package, str]:
    """The candidate version of a package and its Depends line."""
    text = run(["apt-cache", "show", "--no-all-versions", name], None)
    fields = dict(
        line.split(": ", 1) for line in text.splitlines() if ": " in line and line[0] != " "
    )
    if "Version" not in fields:
        raise errors.OperationFailed(f"apt-cache shows no version of {name}")
    return Package(name, fields["Version"]), fields.get("Depends", "")


def _kernel_dependency(meta: tuple[Package, str], run: hostcmd.Runner) -> Package:
    for alternative in meta[1].split(","):
        name, _, constraint = alternative.strip().partition(" ")
        if _KERNEL_NAME.match(name):
            pinned = re.fullmatch(r"\(= (\S+)\)", constraint.strip())
            return Package(name, pinned[1]) if pinned else _candidate(name, run)[0]
    raise errors.OperationFailed(
        f"{meta[0].spec} depends on no linux-image package", hint=f"Depends: {meta[1]}"
    )


def _key(kernel: Package, busybox: Package, agent: Package | None = None) -> str:
    inputs = [_FORMAT, kernel.spec, busybox.spec, GUEST_MODULES, init_script(GUEST_MODULES)]
    if agent is not None:
        # the libraries qemu-ga links come from the same release as it: its
        # version stands for them
        modules = GUEST_MODULES + agentguest.MODULES
        inputs += [agent.spec, agentguest.MODULES, agentguest.init_script(modules)]
    digest = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:16]
    return f"{kernel.version}-{digest}"


@contextlib.contextmanager
def _locked(root: pathlib.Path) -> Iterator[None]:
    """One builder per cache dir at a time (parallel test processes share it)."""
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build_in(
    work: pathlib.Path, *, packages: list[Package], agent: bool, run: hostcmd.Runner
) -> pathlib.Path:
    tree = work / "tree"
    debs = work / "debs"
    debs.mkdir()
    run(["apt-get", "download", "-q", *(p.spec for p in packages)], debs)
    for deb in sorted(debs.glob("*.deb")):
        run(["dpkg-deb", "-x", str(deb), str(tree)], None)
    vmlinuz = _one(tree.glob("boot/vmlinuz-*"), what=f"kernel in {packages[0].spec}")
    modules_dir = tree / "lib" / "modules" / vmlinuz.name.removeprefix("vmlinuz-")
    out = work / "out"
    out.mkdir()
    vmlinuz.rename(out / "vmlinuz")
    entries = _entries(tree, modules_dir, run=run, agent=agent)
    if agent:
        libs = work / "libs"
        libs.mkdir()
        entries += agentguest.entries(tree, libs, run=run)
    (out / "initramfs.img").write_bytes(initramfs.pack(entries))
    return out


def _one(found: Iterator[pathlib.Path], *, what: str) -> pathlib.Path:
    matches = sorted(found)
    if len(matches) != 1:
        raise errors.OperationFailed(f"expected one {what}, found {len(matches)}")
    return matches[0]


def _entries(
    tree: pathlib.Path, modules_dir: pathlib.Path, *, run: hostcmd.Runner, agent: bool = False
) -> list[initramfs.Entry]:
    busybox = tree / "bin" / "busybox"
    dirs = ["bin", "dev", "lib", "lib/modules", "proc", "sbin", "sys", "tmp", "usr"]
    entries = [initramfs.directory(d) for d in [*dirs, "usr/bin", "usr/sbin"]]
    entries.append(initramfs.char_device("dev/console", 5, 1))
    entries.append(initramfs.file("bin/busybox", busybox.read_bytes(), executable=True))
    # Applet links made here rather than by `busybox --install` at boot: no
    # dependence on /proc at that moment, and the archive lists them all.
    for applet in sorted(set(run([str(busybox), "--list-full"], None).split())):
        if applet != "bin/busybox":
            entries.append(initramfs.symlink(applet, "/bin/busybox"))
    loaded = []
    for name in GUEST_MODULES + (agentguest.MODULES if agent else ()):
        data = _module(modules_dir, name)
        if data is not None:
            entries.append(initramfs.file(f"lib/modules/{name}.ko", data))
            loaded.append(name)
    script = (agentguest.init_script if agent else init_script)(tuple(loaded))
    entries.append(initramfs.file("init", script.encode(), executable=True))
    return entries


def _module(modules_dir: pathlib.Path, name: str) -> bytes | None:
    """A module's bytes, or None when the kernel has it built in."""
    for path in modules_dir.rglob(f"{name}.ko*"):
        if path.name == f"{name}.ko":
            return path.read_bytes()
        if path.name == f"{name}.ko.xz":  # newer Debian kernels compress modules
            return lzma.decompress(path.read_bytes())
    builtin = modules_dir / "modules.builtin"
    if builtin.exists() and f"/{name}.ko" in builtin.read_text():
        return None
    raise errors.OperationFailed(f"kernel module {name} not found under {modules_dir.name}")


def _write_manifest(out: pathlib.Path, *, packages: list[Package]) -> None:
    manifest = {"packages": [p.spec for p in packages], "cmdline": CMDLINE}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def init_script(modules: tuple[str, ...]) -> str:
    """/init: mount the pseudo filesystems, load the modules, wait for the disk, count."""
    return f"""\
#!/bin/sh
# csi-vm counter guest
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {" ".join(modules)}; do
  insmod /lib/modules/$m.ko || echo "CSIVMCTR insmod $m failed"
done
{wait_for_disk()}
{power_button()}
{counter.shell_loop(COUNTER_DEVICE)}"""


def wait_for_disk() -> str:
    """sh code: wait up to 10 s for the counter's disk, else power off."""
    return f"""\
i=0
while [ ! -b {COUNTER_DEVICE} ]; do
  i=$((i + 1))
  if [ $i -gt 100 ]; then
    echo "CSIVMCTR no {COUNTER_DEVICE}: powering off"
    poweroff -f
  fi
  sleep 0.1
done"""


def power_button() -> str:
    """sh code: power off when the ACPI power button is pressed.

    One reader per "Power Button" input device waits for its first event.
    Every counter record is written with fsync before it is acknowledged, so
    powering off between two writes loses no acknowledged value.
    """
    return """\
i=0
while [ -z "$(ls /dev/input 2>/dev/null)" ] && [ $i -lt 20 ]; do
  i=$((i + 1)); sleep 0.1
done
for ev in /sys/class/input/event*; do
  if grep -q "Power Button" "$ev/device/name" 2>/dev/null; then
    ( dd if=/dev/${ev#/sys/class/} bs=24 count=1 >/dev/null 2>&1
      echo "CSIVMCTR power button: powering off"
      poweroff -f ) &
  fi
done"""
