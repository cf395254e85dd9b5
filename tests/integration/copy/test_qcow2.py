"""qcow2 import and export through qemu-img, and damaged images refused."""

from __future__ import annotations

import gzip
import os
import pathlib
import shutil
import subprocess
from collections.abc import Callable

import pytest

from csi_vm import errors
from csi_vm.copy import engine, model

from .conftest import MiB, make_image, same_bytes

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img"),
]

SIZE = 64 * MiB


def test_export_and_import_round_trip(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=6)
    qcow = tmp_path / "disk.qcow2"
    out = engine.copy(src, qcow, options=model.Options(output=model.Format.QCOW2, verify=True))
    assert (out.method, out.target_format) == (model.Method.QEMU_IMG, model.Format.QCOW2)
    assert qcow.read_bytes()[:4] == b"QFI\xfb"
    back = tmp_path / "back.img"
    into = engine.copy(qcow, back, options=model.Options(verify=True))
    assert (into.source_format, into.size) == (model.Format.QCOW2, SIZE)
    assert same_bytes(src, back, size=SIZE)
    assert back.stat().st_blocks <= src.stat().st_blocks * 1.05


def test_an_import_into_a_larger_disk_file_gets_the_disks_length(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=6)
    qcow = tmp_path / "disk.qcow2"
    engine.copy(src, qcow, options=model.Options(output=model.Format.QCOW2))
    disk = tmp_path / "disk.img"
    engine.copy(qcow, disk, options=model.Options(verify=True, min_size=2 * SIZE))
    assert disk.stat().st_size == 2 * SIZE
    assert same_bytes(src, disk, size=SIZE)


def test_import_onto_a_used_device(
    tmp_path: pathlib.Path, loop_device: Callable[..., pathlib.Path]
) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=3)
    qcow = tmp_path / "disk.qcow2"
    engine.copy(src, qcow, options=model.Options(output=model.Format.QCOW2))
    device = loop_device(SIZE, fill=0xEE)
    engine.copy(qcow, device, options=model.Options(overwrite=True, verify=True))
    assert same_bytes(src, device, size=SIZE)


def test_qcow2_cannot_go_onto_a_device(
    tmp_path: pathlib.Path, loop_device: Callable[..., pathlib.Path]
) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=1)
    with pytest.raises(errors.InvalidInput, match="qcow2 output needs a file"):
        engine.copy(
            src, loop_device(SIZE), options=model.Options(output=model.Format.QCOW2, overwrite=True)
        )


@pytest.mark.parametrize("keep", [100, 2 * MiB], ids=["header-only", "half"])
def test_truncated_qcow2_is_refused(tmp_path: pathlib.Path, keep: int) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=8)
    qcow = tmp_path / "disk.qcow2"
    engine.copy(src, qcow, options=model.Options(output=model.Format.QCOW2))
    os.truncate(qcow, keep)
    with pytest.raises(errors.InvalidInput, match=str(qcow)) as caught:
        engine.copy(qcow, tmp_path / "out.img", options=model.Options())
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out.img").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.qcow2", "src.img"]


def test_an_empty_qcow2_from_qemu_img_create_is_imported(tmp_path: pathlib.Path) -> None:
    """Its L1 table ends the file mid-cluster: that is whole, not truncated."""
    qcow = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "16M"], check=True)
    out = tmp_path / "out.img"
    result = engine.copy(qcow, out, options=model.Options())
    assert (result.source_format, result.size) == (model.Format.QCOW2, 16 * MiB)
    assert out.stat().st_size == 16 * MiB and not any(out.read_bytes())


def test_something_else_is_refused(tmp_path: pathlib.Path) -> None:
    archive = tmp_path / "disk.img.gz"
    archive.write_bytes(gzip.compress(bytes(MiB)))
    with pytest.raises(errors.InvalidInput, match=f"{archive} is a gzip archive"):
        engine.copy(archive, tmp_path / "out.img", options=model.Options())
