"""Block devices: file to device to file, sizes, and old data on the device."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest

from csi_vm import errors
from csi_vm.copy import engine, model

from .conftest import MiB, assert_same_allocation, make_image, same_bytes

pytestmark = pytest.mark.integration

SIZE = 128 * MiB
Loop = Callable[..., pathlib.Path]


@pytest.mark.parametrize("zeroed", [False, True], ids=["used-device", "fresh-device"])
def test_round_trip_through_a_device(
    tmp_path: pathlib.Path, loop_device: Loop, zeroed: bool
) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=12)
    # A used device is full of old bytes that must not show through holes; a
    # fresh one reads as zeros, so only data needs writing.
    device = loop_device(SIZE + 16 * MiB, fill=None if zeroed else 0xA5)
    to_dev = engine.copy(
        src, device, options=model.Options(overwrite=True, target_zeroed=zeroed, verify=True)
    )
    assert to_dev.method is model.Method.READWRITE
    back = tmp_path / "back.img"
    from_dev = engine.copy(device, back, options=model.Options(verify=True))
    # The device is larger: the copy back has the device's size, and zero
    # detection keeps it sparse.
    assert back.stat().st_size == SIZE + 16 * MiB
    assert same_bytes(src, back, size=SIZE)
    assert from_dev.copied == 12 * MiB + (0 if zeroed else 16 * MiB)
    if zeroed:
        with back.open("r+b") as f:
            f.truncate(SIZE)
        assert_same_allocation(src, back)


def test_bytes_past_the_image_are_untouched(tmp_path: pathlib.Path, loop_device: Loop) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=4)
    device = loop_device(SIZE + MiB, fill=0x5A)
    engine.copy(src, device, options=model.Options(overwrite=True))
    with device.open("rb") as f:
        f.seek(SIZE)
        assert f.read() == b"\x5a" * MiB


def test_device_smaller_than_the_image(tmp_path: pathlib.Path, loop_device: Loop) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=1)
    device = loop_device(SIZE - MiB)
    with pytest.raises(errors.OutOfRange, match="the image needs"):
        engine.copy(src, device, options=model.Options(overwrite=True))


def test_device_needs_overwrite(tmp_path: pathlib.Path, loop_device: Loop) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=1)
    with pytest.raises(errors.AlreadyExists, match="--force"):
        engine.copy(src, loop_device(SIZE), options=model.Options())


def test_mounted_device_is_refused(
    tmp_path: pathlib.Path, filesystem: Callable[..., pathlib.Path]
) -> None:
    mountpoint = filesystem(64 * MiB, "mkfs.ext4", "-q")
    device = pathlib.Path(
        next(
            line.split()[0]
            for line in pathlib.Path("/proc/mounts").read_text().splitlines()
            if line.split()[1] == str(mountpoint)
        )
    )
    src = make_image(tmp_path / "src.img", size=32 * MiB, extents=1)
    with pytest.raises(errors.Rejected, match="in use"):
        engine.copy(src, device, options=model.Options(overwrite=True))
