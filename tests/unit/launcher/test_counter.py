"""The counter record: parsing and reading it from a disk."""

from __future__ import annotations

import pathlib

import pytest

from csi_vm import errors
from launcher import counter


def _block(text: bytes) -> bytes:
    return text.ljust(counter.BLOCK_SIZE, b"\0")


def test_zeros_mean_no_write_yet() -> None:
    assert counter.parse(bytes(counter.BLOCK_SIZE)) is None


def test_a_record_parses() -> None:
    record = counter.parse(_block(b"CSIVMCTR 00000000000000000042 1700000000.250000 131072\n"))
    assert record == counter.Record(42, 1700000000.25, 131072)


@pytest.mark.parametrize(
    "text",
    [b"hello world", b"CSIVMCTR 12 1.0\n", b"CSIVMCTR x 1.0 5\n", b"\x01" * 16],
    ids=["foreign", "short", "not-a-number", "binary"],
)
def test_anything_else_is_a_data_safety_error(text: bytes) -> None:
    with pytest.raises(errors.DataSafetyError):
        counter.parse(_block(text))


def test_read_counter_from_an_image(tmp_path: pathlib.Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(counter.OFFSET) + _block(b"CSIVMCTR 00000000000000000007 1.5 8\n"))
    assert counter.read_counter(image) == 7
    assert counter.read_record(image) == counter.Record(7, 1.5, 8)


def test_a_disk_shorter_than_the_record_reads_as_zero(tmp_path: pathlib.Path) -> None:
    image = tmp_path / "tiny.img"
    image.write_bytes(b"\0" * 512)
    assert counter.read_counter(image) == 0


def test_a_missing_disk_is_not_found(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.NotFound):
        counter.read_counter(tmp_path / "absent")


def test_the_guest_loop_writes_what_the_reader_parses() -> None:
    loop = counter.shell_loop("/dev/vdb")
    assert f"bs={counter.BLOCK_SIZE} seek={counter.BLOCK_INDEX}" in loop
    assert "conv=sync,notrunc,fsync" in loop
    assert "/sys/block/vdb/size" in loop
    assert "printf 'CSIVMCTR %020d %s %s\\n'" in loop
