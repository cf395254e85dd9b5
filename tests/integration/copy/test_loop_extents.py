"""A loop device is read for its data alone: its backing file's holes are its holes."""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections.abc import Iterator

import pytest

from csi_vm.copy import engine, kernel, model, plan
from tests.integration.copy.conftest import MiB, data_map, make_image, same_bytes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SIZE = 64 * MiB


@pytest.fixture
def attach(tmp_path: pathlib.Path) -> Iterator[object]:
    devices: list[str] = []

    def make(backing: pathlib.Path, *, offset: int = 0) -> str:
        args = ["losetup", "--find", "--show", "--offset", str(offset), str(backing)]
        devices.append(
            subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()
        )
        return devices[-1]

    yield make
    for device in devices:
        subprocess.run(["losetup", "-d", device], check=False)


def _extents(device: str) -> list[tuple[int, int]]:
    fd = os.open(device, os.O_RDONLY)
    try:
        return plan.merge(kernel.data_extents(fd, size=kernel.device_size(fd)))
    finally:
        os.close(fd)


def test_a_loop_device_has_its_files_holes(tmp_path: pathlib.Path, attach: object) -> None:
    image = make_image(tmp_path / "disk.img", size=SIZE, extents=5)
    device = attach(image)  # type: ignore[operator]
    found = _extents(device)
    assert found == data_map(image)
    assert plan.total(found) == 5 * MiB  # not the whole device


def test_data_written_through_the_device_is_seen(tmp_path: pathlib.Path, attach: object) -> None:
    image = make_image(tmp_path / "disk.img", size=SIZE, extents=2)
    device = attach(image)  # type: ignore[operator]
    fd = os.open(device, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\x01" * 4096, SIZE - 8192)  # in the page cache only, until a flush
    finally:
        os.close(fd)
    found = _extents(device)
    assert any(start <= SIZE - 8192 < start + length for start, length in found), found


def test_an_offset_device_maps_from_its_start(tmp_path: pathlib.Path, attach: object) -> None:
    image = tmp_path / "disk.img"
    with image.open("wb") as f:
        f.truncate(SIZE)
        f.seek(2 * MiB)
        f.write(b"\x02" * MiB)
    device = attach(image, offset=MiB)  # type: ignore[operator]
    assert _extents(device) == [(MiB, MiB)]


def test_a_copy_from_a_loop_device_reads_its_data_alone(
    tmp_path: pathlib.Path, attach: object
) -> None:
    image = make_image(tmp_path / "disk.img", size=SIZE, extents=3)
    device = attach(image)  # type: ignore[operator]
    totals: set[int] = set()

    def progress(phase: model.Phase, done: int, total: int) -> None:
        if phase is model.Phase.COPY:
            totals.add(total)

    out = tmp_path / "copy.img"
    options = model.Options(progress=progress)
    engine.copy(pathlib.Path(device), out, options=options)
    assert totals == {3 * MiB}  # what is read: the data, not the 64 MiB device
    assert same_bytes(image, out, size=SIZE)
