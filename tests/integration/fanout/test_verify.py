"""Every clone of a fan-out is compared with the source, whose sampled blocks are read once."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

import pytest

from csi_vm.flows import effects
from tests.integration.fanout.conftest import Lab, assert_tidy, make_golden, vm_names

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SIZE = 1 << 20


def test_blank_clones_stop_the_fanout_with_one_clear_error(
    lab_factory: Callable[..., Lab],
) -> None:
    golden = make_golden(lab_factory())
    lab = golden.lab
    lab.env.report("local")  # the honest driver is probed; its report is trusted from here
    lab.driver.args += ["--fault", "clone-blank"]
    lab.driver.restart()
    got = lab.cli(
        "clone", golden.vm, "--count", "3", "--name-template", "lab-{i}", "--parallel", "2"
    )
    assert got.returncode == 5, got.stderr
    assert "differs from its source at byte" in got.stderr
    assert "answered the clone ready but did not do it" in got.stderr
    assert "0 of 3 clones made and kept" in got.stderr
    assert vm_names(lab) == {golden.vm}
    undone = lab.cli("resume", "--rollback")
    assert undone.returncode == 0, undone.stderr
    assert_tidy(lab)


def _file(path: pathlib.Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_a_source_is_read_once_and_each_clone_in_full_sample(tmp_path: pathlib.Path) -> None:
    data = os.urandom(SIZE)
    src = _file(tmp_path / "src", data)
    samples = effects.SourceSamples()
    blocks = samples.blocks(src, size=SIZE)
    # Changed after the first read, the source is not read again: its blocks are as first read.
    _file(tmp_path / "src", bytes(SIZE))
    assert samples.blocks(src, size=SIZE) is blocks
    assert effects.first_unlike(blocks, _file(tmp_path / "same", data), size=SIZE) is None
    at = effects.offsets(SIZE)[-2]
    changed = bytearray(data)
    changed[at + 100] ^= 0xFF
    assert effects.first_unlike(blocks, _file(tmp_path / "other", bytes(changed)), size=SIZE) == at
    samples.forget(src)
    assert samples.blocks(src, size=SIZE) == [bytes(len(b)) for b in blocks]  # read afresh
