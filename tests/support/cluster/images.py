"""Container images made on this machine, since no registry can be reached.

Three images, imported into the cluster's containerd under ``csi-vm.local/``:

- ``pause``: the pod sandbox, a static C program written here;
- ``sidecars``: the statically linked kubernetes-csi programs, nothing else;
- ``csi-vm``: Debian 12 from Debian's packages (debootstrap), Python, qemu,
  libvirt and the tools the local driver calls, plus the project's wheel in a
  virtualenv. The Debian part is cached by its package list; only the layer
  with the wheel changes when the project does.

Images are written as docker-archive tarballs (``manifest.json`` naming the
config and the layers), which ``ctr images import`` reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Sequence

from tests.support.cluster import gobuild, pins

REGISTRY = "csi-vm.local"
PAUSE = f"{REGISTRY}/pause:1"
SIDECARS = f"{REGISTRY}/sidecars:{pins.SNAPSHOTTER.version}"
# The project's images are tagged with a digest of the wheels in them, so a
# changed project is a new tag and `helm upgrade` rolls the pods.
CSI_VM_REPO = f"{REGISTRY}/csi-vm"
LIBVIRT_REPO = f"{REGISTRY}/libvirt"


def project_tag(archive: pathlib.Path) -> str:
    """The tag of the project's images in ``archive`` (csi-vm-<tag>.tar)."""
    return archive.stem.removeprefix("csi-vm-")


DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the csi-vm image needs: Python with Debian's libvirt binding (the
# virtualenv sees system packages), the local driver's tools (losetup, mount,
# mkfs, resize), qemu-img for image import and host copies, and libvirtd with
# qemu for the node DaemonSet's libvirt container.
IMAGE_PACKAGES = (
    "python3",
    "python3-venv",
    "python3-libvirt",
    "util-linux",
    "mount",
    "e2fsprogs",
    "xfsprogs",
    "qemu-utils",
    "qemu-system-x86",
    "libvirt-daemon",
    "libvirt-daemon-driver-qemu",
    "libvirt-clients",
    "udev",
    "procps",
)

_PAUSE_SOURCE = r"""
/* The pod sandbox's only process: hold the namespaces, reap orphans, and
 * leave at once on SIGINT or SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
    signal(SIGINT, leave);
    signal(SIGTERM, leave);
    signal(SIGCHLD, reap);
    for (;;) pause();
}
"""

Say = Callable[[str], object]


class ImageBuildFailed(RuntimeError):
    """An image could not be made: the message says which step."""


def _run(cmd: Sequence[str], *, log: pathlib.Path, step: str, **kw: object) -> None:
    with log.open("a") as out:
        out.write(f"== {step}: {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, stdout=out, stderr=out, check=False, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise ImageBuildFailed(f"{step} failed (exit {done.returncode}): see {log}")


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tar_dir(src: pathlib.Path, dest: pathlib.Path, *, members: Sequence[str] = (".",)) -> None:
    """A layer tarball of ``src``, owners kept numerically, device files left out."""
    subprocess.run(
        [
            "tar",
            "-C",
            str(src),
            "--numeric-owner",
            "--xattrs",
            "-cf",
            str(dest),
            "--exclude=./dev/*",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            *members,
        ],
        check=True,
    )


@dataclasses.dataclass(frozen=True)
class Tag:
    """One image of an archive: its name and how a container of it starts."""

    ref: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()


def write_archive(
    dest: pathlib.Path, *, tags: Sequence[Tag], layers: Sequence[pathlib.Path]
) -> None:
    """A docker-archive tarball of ``layers`` (uncompressed tars), one image per tag.

    Several tags share the layers: the libvirt image is the csi-vm image
    with another command, stored once.
    """
    diff_ids = [f"sha256:{_sha256(layer)}" for layer in layers]
    layer_names = [f"{d.removeprefix('sha256:')}/layer.tar" for d in diff_ids]
    manifest = []
    with tarfile.open(dest, "w") as archive:
        for tag in tags:
            config_bytes = json.dumps(_config(tag, diff_ids), sort_keys=True).encode()
            config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
            _add_bytes(archive, config_name, config_bytes)
            manifest.append({"Config": config_name, "RepoTags": [tag.ref], "Layers": layer_names})
        _add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        for layer, name in zip(layers, layer_names, strict=True):
            archive.add(layer, arcname=name)


def _config(tag: Tag, diff_ids: list[str]) -> dict[str, object]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": list(tag.env)
            or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": list(tag.entrypoint) or None,
            "Cmd": list(tag.cmd) or None,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, fileobj=_BytesReader(data))


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


def images_dir() -> pathlib.Path:
    return gobuild.cache_root() / "images"


def pause_archive(*, log: pathlib.Path) -> pathlib.Path:
    dest = images_dir() / "pause-1.tar"
    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        (work / "pause.c").write_text(_PAUSE_SOURCE)
        root = work / "root"
        root.mkdir()
        _run(
            ["gcc", "-static", "-Os", "-o", str(root / "pause"), str(work / "pause.c")],
            log=log,
            step="compiling pause",
        )
        _tar_dir(root, work / "layer.tar")
        _atomic_archive(
            dest, tags=[Tag(PAUSE, entrypoint=("/pause",))], layers=[work / "layer.tar"]
        )
    return dest


def sidecars_archive(bins: dict[str, pathlib.Path], *, log: pathlib.Path) -> pathlib.Path:
    names = "-".join(f"{p.version}" for p in pins.ALL if p is not pins.KUBE and p is not pins.ETCD)
    dest = images_dir() / f"sidecars-{names}.tar"
    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "root"
        (root / "bin").mkdir(parents=True)
        (root / "tmp").mkdir(mode=0o1777)
        for program in (pins.PROVISIONER, pins.ATTACHER, pins.RESIZER, pins.SNAPSHOTTER):
            for _, binary in program.packages:
                shutil.copy2(bins[program.name] / binary, root / "bin" / binary)
        layer = pathlib.Path(tmp) / "layer.tar"
        _tar_dir(root, layer)
        _atomic_archive(dest, tags=[Tag(SIDECARS)], layers=[layer])
    return dest


def _atomic_archive(dest: pathlib.Path, **kw: object) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    write_archive(partial, **kw)  # type: ignore[arg-type]
    partial.rename(dest)


def debian_rootfs(*, log: pathlib.Path, say: Say) -> pathlib.Path:
    """Debian 12 with IMAGE_PACKAGES, made once per package list."""
    recipe = (DEBIAN_SUITE, *IMAGE_PACKAGES, _LIBVIRT_QEMU_CONF, "libvirt-qemu user")
    key = hashlib.sha256("\n".join(recipe).encode()).hexdigest()[:12]
    root = images_dir() / f"debian-{key}"
    if (root / ".complete").is_file():
        return root
    say(f"making the Debian root filesystem for the csi-vm image ({len(IMAGE_PACKAGES)} packages)")
    for stale in images_dir().glob("debian-*"):
        # An older recipe's root and layer: gigabytes nothing uses any more.
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink()
    root.mkdir(parents=True)
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(IMAGE_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
            DEBIAN_MIRROR,
        ],
        log=log,
        step="debootstrap",
    )
    # No caches or package lists in an image; nothing runs apt there.
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(root / junk, ignore_errors=True)
    _libvirt_config(root, log=log)
    (root / ".complete").write_text(key)
    return root


_LIBVIRT_QEMU_CONF = 'user = "root"\ngroup = "root"\nnamespaces = [ ]\nsecurity_driver = "none"\n'


def _libvirt_config(root: pathlib.Path, *, log: pathlib.Path) -> None:
    # In a container there is no systemd and no per-VM user switching: qemu
    # runs as root inside the privileged libvirt container.
    (root / "etc" / "libvirt" / "qemu.conf").write_text(_LIBVIRT_QEMU_CONF)
    # libvirtd resolves its compiled-in default user before it reads
    # qemu.conf, so the user must exist although qemu never runs as it.
    chroot = ["chroot", str(root)]
    _run([*chroot, "groupadd", "-r", "-f", "libvirt-qemu"], log=log, step="libvirt-qemu group")
    _run(
        [
            *chroot,
            "useradd",
            "-r",
            "-g",
            "libvirt-qemu",
            "-M",
            "-s",
            "/usr/sbin/nologin",
            "libvirt-qemu",
        ],
        log=log,
        step="libvirt-qemu user",
    )


def wheelhouse(project: pathlib.Path, *, log: pathlib.Path) -> pathlib.Path:
    """The project's wheel and its dependencies' wheels, for an offline install."""
    out = images_dir() / "wheelhouse"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    python = project / ".venv" / "bin" / "python"
    _run(
        [str(python), "-m", "pip", "wheel", "-q", "-w", str(out), str(project)],
        log=log,
        step="building the project's wheels",
    )
    return out


def csi_vm_archive(project: pathlib.Path, *, log: pathlib.Path, say: Say) -> pathlib.Path:
    """The csi-vm image: the Debian layer, then a layer with the project's virtualenv."""
    root = debian_rootfs(log=log, say=say)
    wheels = wheelhouse(project, log=log)
    digest = hashlib.sha256(root.name.encode())
    # How the image is put together is part of what it is.
    digest.update(pathlib.Path(__file__).read_bytes())
    for wheel in sorted(wheels.iterdir()):
        digest.update(wheel.name.encode())
        digest.update(_sha256(wheel).encode())
    dest = images_dir() / f"csi-vm-{digest.hexdigest()[:12]}.tar"
    if dest.is_file():
        return dest
    base_layer = root.with_suffix(".layer.tar")
    if not base_layer.is_file():
        _tar_dir(root, base_layer.with_suffix(".partial"))
        base_layer.with_suffix(".partial").rename(base_layer)
    for stale in images_dir().glob("csi-vm-*.tar"):
        stale.unlink()  # one project image at a time: each is hundreds of MiB
    with tempfile.TemporaryDirectory(dir=images_dir()) as tmp:
        app = pathlib.Path(tmp)
        _install_app(root, wheels, app, log=log)
        layer = app / "layer.tar"
        _tar_dir(app / "root", layer)
        env = (
            "VIRTUAL_ENV=/opt/csi-vm",
            "PATH=/opt/csi-vm/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        tags = [
            # As deploy/csi-vm.Dockerfile: the chart passes only arguments.
            Tag(f"{CSI_VM_REPO}:{project_tag(dest)}", entrypoint=("csi-vm",), env=env),
            # What deploy/libvirt.Dockerfile starts: virtlogd, then libvirtd.
            Tag(
                f"{LIBVIRT_REPO}:{project_tag(dest)}",
                cmd=(
                    "sh",
                    "-c",
                    "mkdir -p /var/log/libvirt /var/lib/libvirt /var/cache/libvirt"
                    " /run/libvirt && virtlogd -d && exec libvirtd",
                ),
                env=env,
            ),
        ]
        _atomic_archive(dest, tags=tags, layers=[base_layer, layer])
    return dest


def _install_app(
    root: pathlib.Path, wheels: pathlib.Path, app: pathlib.Path, *, log: pathlib.Path
) -> None:
    """Install the wheels into /opt/csi-vm inside the Debian root, then move them out."""
    inside = root / "opt" / "csi-vm"
    stage = root / "tmp" / "wheels"
    shutil.rmtree(inside, ignore_errors=True)
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(wheels, stage)
    try:
        chroot = ["chroot", str(root)]
        _run(
            [*chroot, "python3", "-m", "venv", "--system-site-packages", "/opt/csi-vm"],
            log=log,
            step="virtualenv in the image",
        )
        project_wheel = next(w.name for w in wheels.iterdir() if w.name.startswith("csi_vm-"))
        _run(
            [
                *chroot,
                "/opt/csi-vm/bin/pip",
                "install",
                "-q",
                "--no-index",
                "--no-cache-dir",
                "--find-links",
                "/tmp/wheels",
                f"/tmp/wheels/{project_wheel}",
            ],
            log=log,
            step="installing csi-vm in the image",
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        # An install from the wheel alone shows a missing dependency here,
        # not as a crash-looping pod.
        _run(
            [*chroot, "/opt/csi-vm/bin/csi-vm", "--help"],
            log=log,
            step="csi-vm --help in the image",
        )
        (app / "root" / "opt").mkdir(parents=True)
        shutil.move(str(inside), app / "root" / "opt" / "csi-vm")
        (app / "root" / "usr" / "local" / "bin").mkdir(parents=True)
        os.symlink("/opt/csi-vm/bin/csi-vm", app / "root" / "usr" / "local" / "bin" / "csi-vm")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(inside, ignore_errors=True)
