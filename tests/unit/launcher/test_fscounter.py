"""The agent guest's filesystem as the host makes and reads it, with the real e2fsprogs."""

from __future__ import annotations

import pathlib

import pytest

from csi_vm import errors
from launcher import counter, fscounter

MIB = 1 << 20


def test_a_new_image_holds_a_clean_ext4_with_the_counter_at_zero(tmp_path: pathlib.Path) -> None:
    image = tmp_path / "disk.raw"
    fscounter.make_image(image, size=16 * MIB)
    assert image.stat().st_size == 16 * MIB
    check = fscounter.check(image)
    assert (check.needs_recovery, check.clean) == (False, True), check.report
    assert fscounter.read_record(image) == counter.Record(0, 0.0, 0)


def test_the_record_is_read_where_the_guest_writes_it(tmp_path: pathlib.Path) -> None:
    """The guest overwrites the file's one block in place: the host finds it there."""
    image = tmp_path / "disk.raw"
    fscounter.make_image(image, size=16 * MIB)
    offset = fscounter.record_offset(image)
    with image.open("r+b") as disk:
        disk.seek(offset)
        disk.write(counter.MAGIC + b" %020d 1700000000.5 32768\n" % 42)
    assert fscounter.read_counter(image, offset=offset) == 42
    assert fscounter.read_counter(image) == 42


def test_a_disk_without_the_filesystem_is_a_data_safety_error(tmp_path: pathlib.Path) -> None:
    blank = tmp_path / "blank.raw"
    blank.write_bytes(b"\0" * MIB)
    with pytest.raises(errors.DataSafetyError, match="holds no ext4 filesystem"):
        fscounter.record_offset(blank)
