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
        ("64Mi", 64 << 20),
        ("1G", 10**9),
        ("20Gi", 20 << 30),
        ("512 k", 512_000),
        ("2TiB", 2 << 40),
        ("1.5Gi", 3 << 29),
        ("0.5k", 500),
    ],
    ids=["int", "MiB", "Mi", "G-decimal", "Gi-binary", "k-space", "TiB", "fraction", "half-k"],
)
def test_sizes_are_kubernetes_quantities(value: object, size: int) -> None:
    notes: list[str] = []
    assert spec.parse_size(value, notes=notes) == size
    assert notes == []


def test_ambiguous_gb_is_decimal_with_a_note() -> None:
    notes: list[str] = []
    assert spec.parse_size("20GB", notes=notes) == 20 * 10**9
    assert notes == [
        "size '20GB' is read as decimal (G = 1000^3, as in Kubernetes): "
        "20000000000 bytes; write 20Gi for powers of 1024"
    ]


def test_a_spec_file_hands_back_the_note(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "vm.yaml"
    disk = {"name": "root", "size": "2MB", "driver": "local"}
    path.write_text(yaml.safe_dump({"name": "vm1", "disks": [disk]}))
    notes: list[str] = []
    assert spec.load(path, notes=notes).disks[0].size == 2_000_000
    assert len(notes) == 1 and "'2MB' is read as decimal" in notes[0]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (0, "larger than 0"),
        (-1, "larger than 0"),
        ("0MiB", "larger than 0"),
        ("ten", "is not a size"),
        ("65TiB", "64 TiB"),
        (True, "boolean"),
        ("1PiB", "64 TiB"),
        ("3XB", "unknown unit 'XB'"),
        ("512m", "milli"),
        ("10gi", "unknown unit 'gi'"),
    ],
    ids=[
        "zero", "negative", "zero-unit", "word", "too-big", "bool", "PiB-too-big",
        "unknown-unit", "milli", "lowercase-gi",
    ],
)  # fmt: skip
def test_bad_sizes(value: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
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
