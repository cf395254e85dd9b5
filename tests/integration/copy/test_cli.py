"""`csi-vm image copy` on real files: summary, dry run, reports, clear errors."""

from __future__ import annotations

import json
import pathlib

import click
import pytest
from click.testing import CliRunner

from csi_vm import errors
from csi_vm.cli import image_cmd

from .conftest import MiB, make_image, same_bytes

pytestmark = pytest.mark.integration

SIZE = 32 * MiB


def _cli(*args: str) -> tuple[int, str, BaseException | None]:
    root = click.Group("csi-vm", commands=[image_cmd.app])
    result = CliRunner().invoke(root, ["image", *args])
    return result.exit_code, result.stdout, result.exception


def test_copy_prints_one_summary_line(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=3)
    code, out, exc = _cli("copy", str(src), str(tmp_path / "dst.img"), "--verify")
    assert (code, exc) == (0, None)
    (line,) = out.splitlines()
    assert line.startswith("copied 3 MiB (3 MiB allocated of 32 MiB)")
    assert "by copy_file_range" in line or "by reflink" in line
    assert line.endswith("verified")
    assert same_bytes(src, tmp_path / "dst.img", size=SIZE)


def test_min_size_makes_a_larger_disk_file(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=3)
    dst = tmp_path / "dst.img"
    code, _, exc = _cli("copy", str(src), str(dst), "--verify", "--min-size", "64MiB")
    assert (code, exc) == (0, None)
    assert dst.stat().st_size == 64 * MiB
    assert same_bytes(src, dst, size=SIZE)


def test_json_report(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=2)
    dst = str(tmp_path / "d.qcow2")
    code, out, _ = _cli("copy", str(src), dst, "--format", "qcow2", "-o", "json")
    report = json.loads(out)
    assert code == 0
    assert (report["target_format"], report["method"]) == ("qcow2", "qemu-img")
    assert report["size"] == SIZE


def test_dry_run_writes_nothing(tmp_path: pathlib.Path) -> None:
    src = make_image(tmp_path / "src.img", size=SIZE, extents=1)
    code, out, _ = _cli("copy", str(src), str(tmp_path / "dst.img"), "--dry-run")
    assert code == 0
    assert "method:  reflink then copy_file_range then readwrite" in out
    assert "target file stays sparse" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.img"]


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        ("missing", errors.NotFound, "does not exist"),
        ("exists", errors.AlreadyExists, "exists"),
        ("not-an-image", errors.InvalidInput, "not a multiple of 512"),
        ("not-a-size", errors.InvalidInput, "--min-size 'lots' is not a size"),
    ],
    ids=["missing-source", "target-exists", "not-an-image", "min-size-not-a-size"],
)
def test_clear_errors(
    tmp_path: pathlib.Path, setup: str, error: type[errors.CsiVmError], match: str
) -> None:
    src, dst = tmp_path / "src.img", tmp_path / "dst.img"
    if setup != "missing":
        src.write_bytes(b"not an image" if setup == "not-an-image" else bytes(4096))
    if setup == "exists":
        dst.write_bytes(b"keep me")
    more = ["--min-size", "lots"] if setup == "not-a-size" else []
    _, _, exc = _cli("copy", str(src), str(dst), *more)
    assert isinstance(exc, error)
    assert match in str(exc)
    assert "\n" not in str(exc)
    if setup == "exists":
        assert dst.read_bytes() == b"keep me"
