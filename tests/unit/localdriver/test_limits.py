"""Sizes, names and paths the driver accepts."""

from __future__ import annotations

import pathlib

import pytest

from csi_vm import errors
from csi_vm.localdriver import limits

MiB, GiB = limits.MiB, limits.GiB


@pytest.mark.parametrize(
    ("required", "limit", "minimum", "expected"),
    [
        (0, 0, MiB, GiB),  # empty range: the documented default
        (1, 0, MiB, MiB),  # rounded up to whole MiB
        (MiB + 1, 0, MiB, 2 * MiB),
        (0, 10 * MiB, MiB, 10 * MiB),  # default capped by the limit
        (0, 10 * MiB + 5, MiB, 10 * MiB),  # ...rounded down to fit under it
        (5 * MiB, 5 * MiB, MiB, 5 * MiB),  # exact size
        (3 * MiB, 0, 300 * MiB, 300 * MiB),  # raised to the filesystem's minimum
    ],
    ids=["default", "round-up", "round-up-2", "capped", "capped-rounded", "exact", "xfs-min"],
)
def test_resolve_size(required: int, limit: int, minimum: int, expected: int) -> None:
    assert limits.resolve_size(required, limit, minimum=minimum, field="f") == expected


@pytest.mark.parametrize(
    ("required", "limit", "error"),
    [
        (-1, 0, errors.InvalidInput),
        (0, -1, errors.InvalidInput),
        (2 * MiB, MiB, errors.InvalidInput),
        (MiB + 1, MiB + 2, errors.OutOfRange),  # no whole MiB in the range
        (0, 1000, errors.OutOfRange),
        (limits.MAXIMUM_VOLUME_BYTES + 1, 0, errors.OutOfRange),
    ],
    ids=["negative", "negative-limit", "limit-below", "no-aligned-size", "tiny", "huge"],
)
def test_resolve_size_refuses(required: int, limit: int, error: type[Exception]) -> None:
    with pytest.raises(error, match="capacity_range"):
        limits.resolve_size(required, limit, field="capacity_range")


@pytest.mark.parametrize(
    "name", ["", "x" * 129, "é" * 65, "tab\x01"], ids=["empty", "long", "long-bytes", "ctrl"]
)
def test_bad_names(name: str) -> None:
    with pytest.raises(errors.InvalidInput, match="name"):
        limits.check_name(name, field="name")


@pytest.mark.parametrize("name", ["x" * 128, "pvc-0a1b", "with space\tand tab", "日本"])
def test_good_names(name: str) -> None:
    assert limits.check_name(name, field="name") == name


def test_ids_have_a_plain_shape() -> None:
    vol = limits.new_id("vol")
    assert limits.is_known_shape(vol, kind="vol")
    assert not limits.is_known_shape(vol, kind="snap")
    assert not limits.is_known_shape("vol-../../etc", kind="vol")


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("", "required"),
        ("relative/p", "absolute"),
        ("/", "root"),
        ("{state}", "state directory"),
        ("{state}/volumes/x", "state directory"),
        ("{state}/../state/y", "state directory"),
        ("/a\0b", "NUL"),
    ],
    ids=["empty", "relative", "root", "state", "inside", "dotdot", "nul"],
)
def test_bad_host_paths(tmp_path: pathlib.Path, path: str, says: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(errors.InvalidInput, match=says):
        limits.check_host_path(path.format(state=state), field="target_path", state_dir=state)


def test_host_path_is_normalised(tmp_path: pathlib.Path) -> None:
    got = limits.check_host_path(f"{tmp_path}/a/../b/", field="p", state_dir=tmp_path / "s")
    assert got == tmp_path / "b"


def test_mutable_parameters() -> None:
    assert limits.check_mutable({"tier": "fast", "label": "x"}, field="m") == {
        "tier": "fast",
        "label": "x",
    }
    with pytest.raises(errors.InvalidInput, match="unknown parameter 'iops'"):
        limits.check_mutable({"iops": "1"}, field="m")
    with pytest.raises(errors.InvalidInput, match="not one of"):
        limits.check_mutable({"tier": "gold"}, field="m")
