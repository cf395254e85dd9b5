"""The driver's own loop-device and bind-mount calls against the real kernel (root)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import pathlib
from collections.abc import Iterator

import pytest

from csi_vm.localdriver import kernel
from tests.support import loops

pytestmark = pytest.mark.integration

MiB = 1 << 20


@pytest.fixture
def attached(tmp_path: pathlib.Path) -> Iterator[list[str]]:
    """Devices a test attached; each is detached afterwards even if the test failed.

    Only while it still reads the test's image: once the test detached it, its
    number may belong to another process's device.
    """
    devices: list[str] = []
    yield devices
    for device in devices:
        with contextlib.suppress(OSError):
            backing = _sys(device, "loop/backing_file")
            if backing.startswith(f"{tmp_path.resolve()}/"):
                kernel.loop_detach(device, backing=backing)


def _image(path: pathlib.Path, size: int = 4 * MiB) -> pathlib.Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def _sys(device: str, leaf: str) -> str:
    return pathlib.Path(f"/sys/block/{pathlib.Path(device).name}/{leaf}").read_text().strip()


def test_attach_writes_reach_the_image_and_detach_releases_it(
    tmp_path: pathlib.Path, attached: list[str]
) -> None:
    image = _image(tmp_path / "v.img")
    device = kernel.loop_attach(str(image), read_only=False)
    attached.append(device)
    assert _sys(device, "loop/backing_file") == str(image.resolve())
    assert _sys(device, "ro") == "0"
    fd = os.open(device, os.O_WRONLY)
    try:
        os.pwrite(fd, b"written through the loop", MiB)
        os.fsync(fd)
    finally:
        os.close(fd)
    with image.open("rb") as f:
        f.seek(MiB)
        assert f.read(24) == b"written through the loop"
    kernel.loop_detach(device)
    assert not pathlib.Path(f"/sys/block/{pathlib.Path(device).name}/loop/backing_file").exists()


def test_a_detach_by_identity_leaves_a_reused_number_alone(
    tmp_path: pathlib.Path, attached: list[str]
) -> None:
    """A device name checked and then detached may have been freed and given to
    another image meanwhile: the check is made on the device held open."""
    first, second = _image(tmp_path / "a.img"), _image(tmp_path / "b.img")
    device = kernel.loop_attach(str(first), read_only=False)
    attached.append(device)
    assert kernel.loop_detach(device, backing=str(second)) is False
    assert _sys(device, "loop/backing_file") == str(first.resolve())
    assert kernel.loop_detach(device, backing=str(first)) is True
    assert kernel.loop_detach(device, backing=str(first)) is False  # detached already
    other = kernel.loop_attach(str(second), read_only=False)  # may reuse the number
    attached.append(other)
    assert kernel.loop_detach(device, backing=str(first)) is False
    assert _sys(other, "loop/backing_file") == str(second.resolve())


def test_test_clean_up_detaches_only_devices_under_its_directory(
    tmp_path: pathlib.Path, attached: list[str]
) -> None:
    """Clean-up by a name listed earlier must not take the device another run
    attached under that number since."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    device = kernel.loop_attach(str(_image(ours / "a.img")), read_only=False)
    attached.append(device)
    kernel.loop_detach(device)
    other = kernel.loop_attach(str(_image(theirs / "b.img")), read_only=False)
    attached.append(other)
    assert not loops.detach_under(device, ours)
    assert _sys(other, "loop/backing_file") == str((theirs / "b.img").resolve())
    assert loops.detach_under(other, theirs)
    assert not pathlib.Path(f"/sys/block/{pathlib.Path(other).name}/loop/backing_file").exists()


def test_a_read_only_device_refuses_writes(tmp_path: pathlib.Path, attached: list[str]) -> None:
    device = kernel.loop_attach(str(_image(tmp_path / "r.img")), read_only=True)
    attached.append(device)
    assert _sys(device, "ro") == "1"
    fd = os.open(device, os.O_WRONLY)  # the open succeeds, as with losetup --read-only
    try:
        with pytest.raises(PermissionError):
            os.pwrite(fd, b"x" * 512, 0)
    finally:
        os.close(fd)


def test_set_capacity_shows_a_grown_image(tmp_path: pathlib.Path, attached: list[str]) -> None:
    image = _image(tmp_path / "g.img")
    device = kernel.loop_attach(str(image), read_only=False)
    attached.append(device)
    os.truncate(image, 12 * MiB)
    assert int(_sys(device, "size")) * 512 == 4 * MiB
    kernel.loop_set_capacity(device)
    assert int(_sys(device, "size")) * 512 == 12 * MiB


def test_parallel_attaches_get_distinct_devices(
    tmp_path: pathlib.Path, attached: list[str]
) -> None:
    images = [_image(tmp_path / f"p{i}.img") for i in range(12)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        devices = list(pool.map(lambda i: kernel.loop_attach(str(i), read_only=False), images))
    attached.extend(devices)
    assert len(set(devices)) == len(images)
    for image, device in zip(images, devices, strict=True):
        assert _sys(device, "loop/backing_file") == str(image.resolve())


def test_errors_name_the_object_and_the_reason(tmp_path: pathlib.Path) -> None:
    with pytest.raises(kernel.KernelCallFailed, match=r"opening .*missing\.img: No such file"):
        kernel.loop_attach(str(tmp_path / "missing.img"), read_only=False)
    with pytest.raises(kernel.KernelCallFailed, match=r"binding .* onto .*: No such file"):
        kernel.bind(str(tmp_path / "nowhere"), str(tmp_path), read_only=False)
    with pytest.raises(kernel.KernelCallFailed, match=r"unmounting .*: Invalid argument"):
        kernel.umount(str(tmp_path))  # not a mount point


def test_read_only_bind_refuses_writes_and_unmounts(tmp_path: pathlib.Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    (source / "kept").write_text("data")
    kernel.bind(str(source), str(target), read_only=True)
    try:
        assert (target / "kept").read_text() == "data"
        with pytest.raises(OSError, match="Read-only file system"):
            (target / "new").write_text("refused")
    finally:
        kernel.umount(str(target))
    assert not (target / "kept").exists()
    assert (source / "kept").read_text() == "data"
