"""Resolving the guest's packages, against a fake host."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import pytest

from csi_vm import errors
from launcher import guest

SHOW = {
    "linux-image-cloud-amd64": "Package: linux-image-cloud-amd64\nVersion: 6.1.99-1\n"
    "Depends: linux-image-6.1.0-9-cloud-amd64 (= 6.1.99-1)\n",
    "busybox-static": "Package: busybox-static\nVersion: 1:1.35.0-4\nDepends: libc6\n",
    "linux-image-6.1.0-9-cloud-amd64": "Version: 6.1.99-2\n",
}


class FakeApt:
    def __init__(self, show: dict[str, str], *, lists: bool = True) -> None:
        self.show, self.lists, self.calls = show, lists, []  # type: ignore[var-annotated]

    def __call__(self, args: Sequence[str], cwd: pathlib.Path | None) -> str:
        self.calls.append(list(args))
        if args[:2] == ["apt-get", "update"]:
            self.lists = True
            return ""
        if not self.lists or args[-1] not in self.show:
            raise errors.OperationFailed(f"apt-cache show {args[-1]} failed")
        return self.show[args[-1]]


def test_the_kernel_is_the_pinned_dependency_of_the_meta_package() -> None:
    kernel, busybox = guest.resolve(FakeApt(SHOW))
    assert kernel == guest.Package("linux-image-6.1.0-9-cloud-amd64", "6.1.99-1")
    assert busybox.spec == "busybox-static=1:1.35.0-4"


def test_an_unpinned_dependency_takes_its_own_candidate() -> None:
    show = dict(SHOW)
    show["linux-image-cloud-amd64"] = (
        "Version: 6.1.99-1\nDepends: linux-image-6.1.0-9-cloud-amd64\n"
    )
    kernel, _ = guest.resolve(FakeApt(show))
    assert kernel.version == "6.1.99-2"


def test_missing_package_lists_are_fetched_once() -> None:
    apt = FakeApt(SHOW, lists=False)
    guest.resolve(apt)
    assert apt.calls.count(["apt-get", "update", "-q"]) == 1


def test_a_meta_package_without_a_kernel_is_an_error() -> None:
    show = dict(SHOW)
    show["linux-image-cloud-amd64"] = "Version: 1\nDepends: initramfs-tools\n"
    with pytest.raises(errors.OperationFailed, match="no linux-image"):
        guest.resolve(FakeApt(show))


def test_the_cache_key_follows_the_package_versions() -> None:
    a = guest._key(guest.Package("k", "1"), guest.Package("b", "1"))
    assert a == guest._key(guest.Package("k", "1"), guest.Package("b", "1"))
    assert a != guest._key(guest.Package("k", "2"), guest.Package("b", "1"))
    assert a != guest._key(guest.Package("k", "1"), guest.Package("b", "2"))


def test_init_loads_the_modules_in_order_then_counts() -> None:
    script = guest.init_script(guest.MODULES)
    assert "for m in " + " ".join(guest.MODULES) + ";" in script
    assert guest.MODULES[0] == "virtio_ring" and guest.MODULES[-1] == "virtio_blk"
    assert script.index("insmod") < script.index("CSIVMCTR %020d")


def test_a_cached_guest_is_not_rebuilt(tmp_path: pathlib.Path) -> None:
    apt = FakeApt(SHOW)
    kernel, busybox = guest.resolve(apt)
    cached = tmp_path / guest._key(kernel, busybox)
    cached.mkdir()
    (cached / "manifest.json").write_text("{}")

    image = guest.build(cache_dir=tmp_path, run=apt)

    assert image.kernel == cached / "vmlinuz" and image.initramfs == cached / "initramfs.img"
    assert not [c for c in apt.calls if c[:2] == ["apt-get", "download"]]
