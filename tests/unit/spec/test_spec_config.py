"""VM specs and config files: the shipped examples validate, bad input names its field."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from csi_vm import config, errors, spec

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"


def test_examples_validate() -> None:
    cfg = config.load(EXAMPLES / "config.yaml")
    vm = spec.load(EXAMPLES / "vm.yaml")
    assert cfg.node == "node-a"
    assert {d.driver for d in vm.disks} <= set(cfg.drivers)
    assert vm.disks[0].source.image == EXAMPLES / "root.qcow2"
    assert vm.disks[1].mode is spec.Mode.FILESYSTEM


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1048576, 1048576),
        ("64MiB", 64 << 20),
        ("1G", 1 << 30),
        ("512 K", 512 << 10),
        ("2TiB", 2 << 40),
    ],
    ids=["int", "MiB", "G", "K-space", "TiB"],
)
def test_sizes(value: object, size: int) -> None:
    assert spec.parse_size(value) == size


@pytest.mark.parametrize(
    "value",
    [0, -1, "0MiB", "ten", "1.5G", "65TiB", True, "1PiB"],
    ids=["zero", "negative", "zero-unit", "word", "fraction", "too-big", "bool", "unknown-unit"],
)
def test_bad_sizes(value: object) -> None:
    with pytest.raises(ValueError):
        spec.parse_size(value)


BASE = {"name": "vm1", "disks": [{"name": "root", "size": "1MiB", "driver": "local"}]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "a/b"}, "name"),
        ({"name": "x" * 64}, "name"),
        ({"name": "bad\nname"}, "name"),
        ({"vcpus": 0}, "vcpus"),
        ({"memory_mib": 1}, "memory_mib"),
        ({"colour": "red"}, "colour"),
        ({"disks": []}, "disks"),
        ({"disks": [{"name": "r", "size": "1MiB", "driver": "local"}] * 2}, "disks"),
        ({"disks": [{"name": "r", "size": -5, "driver": "local"}]}, "disks.0.size"),
        ({"disks": [{"name": "r/..", "size": 1, "driver": "local"}]}, "disks.0.name"),
        ({"disks": [{"name": "r", "size": 1, "driver": "local", "mode": "tape"}]}, "disks.0.mode"),
        (
            {
                "disks": [
                    {"name": "r", "size": 1, "driver": "l", "source": {"image": "a", "vm": "b"}}
                ]
            },
            "disks.0.source",
        ),
    ],
    ids=[
        "slash",
        "long",
        "control-char",
        "vcpus",
        "memory",
        "unknown-key",
        "no-disks",
        "dupe-disk",
        "negative-size",
        "disk-slash",
        "mode",
        "two-sources",
    ],
)
def test_bad_specs_name_the_field(
    change: dict[str, object], field: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "vm.yaml"
    path.write_text(yaml.safe_dump({**BASE, **change}))
    with pytest.raises(errors.InvalidInput) as info:
        spec.load(path)
    message = str(info.value)
    assert field in message
    assert "\n" not in message.replace("bad\nname", "")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("drivers: [1, 2]", "drivers"),
        ("drivers: {local: {endpoint: ''}}", "drivers.local.endpoint"),
        ("drivers: {Local: {endpoint: x}}", "driver name"),
        ("drivers: {local: {endpoint: x, timeout: -1}}", "timeout"),
        ("drivers: {local: {endpoint: x, typo: 1}}", "typo"),
        ("node: 'a b'", "node"),
        ("- just a list", "mapping"),
        ("drivers: {local: {endpoint: x}", "YAML"),
    ],
    ids=[
        "list",
        "empty-endpoint",
        "upper-name",
        "timeout",
        "unknown-key",
        "node",
        "not-mapping",
        "bad-yaml",
    ],
)
def test_bad_config_names_the_problem(text: str, needle: str, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(errors.InvalidInput) as info:
        config.load(path)
    assert needle in str(info.value)


def test_missing_files_are_clear(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.InvalidInput, match="does not exist"):
        config.load(tmp_path / "none.yaml")
    with pytest.raises(errors.InvalidInput, match="does not exist"):
        spec.load(tmp_path / "none.yaml")
