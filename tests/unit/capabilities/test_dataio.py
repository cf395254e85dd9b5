"""Measuring and marking published volumes: refusals are failed checks, never crashes."""

from __future__ import annotations

import pathlib

import pytest

from capabilities import dataio
from csi_vm import errors
from csi_vm.csi import models

M = models.VolumeMode


def test_a_block_target_measures_its_length(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "device"
    target.write_bytes(b"\0" * 12288)
    assert dataio.size_of(str(target), mode=M.BLOCK) == 12288


def test_a_mount_measures_its_filesystem(tmp_path: pathlib.Path) -> None:
    assert dataio.size_of(str(tmp_path), mode=M.FILESYSTEM) > 0


@pytest.mark.parametrize("mode", [M.BLOCK, M.FILESYSTEM])
def test_a_target_that_cannot_be_opened_fails_the_check(
    tmp_path: pathlib.Path, mode: models.VolumeMode
) -> None:
    # The probe's checks turn OperationFailed into a failed feature; any other
    # error (a container's device cgroup answers EPERM) ended the whole probe.
    gone = tmp_path / "gone"
    with pytest.raises(errors.OperationFailed, match=r"cannot measure published volume at .*gone"):
        dataio.size_of(str(gone), mode=mode)
