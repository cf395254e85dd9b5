"""The config's own checks: each problem names its key, what is wrong and what to give."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from csi_vm import config, errors, fields

pytestmark = pytest.mark.timeout(10)

ENDPOINT = "unix:///run/csi/x.sock"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"drivers": [1]},
            "drivers: must be a mapping (NAME: {endpoint: ...}), not a list",
        ),
        (
            {"drivers": {"x": {}}},
            "drivers.x.endpoint: missing: give the driver's CSI socket, "
            "e.g. unix:///run/csi/csi.sock",
        ),
        (
            {"drivers": {"x": {"endpoint": ""}}},
            "drivers.x.endpoint: must not be empty: give the driver's CSI socket, "
            "e.g. unix:///run/csi/csi.sock",
        ),
        (
            {"drivers": {"x": {"endpoint": ENDPOINT, "tiemout": 3}}},
            "drivers.x.tiemout: unknown key (allowed: endpoint, nodes, assert, timeout, "
            "modify_parameters, secrets)",
        ),
        (
            {"drivers": {"x": {"endpoint": ENDPOINT, "timeout": 0}}},
            "drivers.x.timeout: must be a number of seconds above 0 and at most 3600",
        ),
        (
            {"drivers": {"x": {"endpoint": ENDPOINT, "timeout": True}}},
            "drivers.x.timeout: must be a number of seconds above 0 and at most 3600",
        ),
        (
            {"drivers": {"x": {"endpoint": ENDPOINT, "modify_parameters": {"iops": 3000}}}},
            "drivers.x.modify_parameters.iops: must be text, not a number: quote it",
        ),
        (
            {"drivers": {"x": {"endpoint": ENDPOINT, "assert": "multi_node_shared"}}},
            "drivers.x.assert: must be a list of text ([a, b]), not text",
        ),
        (
            {"drivers": {"x": {"endpoint": ENDPOINT, "nodes": {1: ENDPOINT}}}},
            "drivers.x.nodes.1: keys must be text, not a number: quote the key",
        ),
        (
            {"nodes": {"b": {"libvirt": ""}}},
            "nodes.b.libvirt: must not be empty: give its libvirt URI, e.g. qemu:///system",
        ),
        (
            {"drivers": {"Fast": {"endpoint": ENDPOINT}}},
            "drivers: driver name 'Fast' must be 1-63 lowercase letters, digits, '.', '_' "
            "or '-', starting and ending with a letter or digit",
        ),
        (
            {"node": 7},
            "node: must be text, not a number: quote it",
        ),
        (
            {"drivers": {"bad key": None}, "extra": 1},
            "extra: unknown key (allowed: drivers, node, nodes); drivers: driver name "
            "'bad key' must be 1-63 lowercase letters, digits, '.', '_' or '-', starting and "
            "ending with a letter or digit; drivers.'bad key': must be a mapping "
            "(endpoint: unix:///PATH, ...), not empty",
        ),
    ],
    ids=[
        "drivers-list",
        "endpoint-missing",
        "endpoint-empty",
        "unknown-key",
        "timeout-zero",
        "timeout-bool",
        "parameter-number",
        "assert-text",
        "key-number",
        "libvirt-empty",
        "driver-name",
        "node-number",
        "every-problem",
    ],
)
def test_problem_names_key_fault_and_remedy(data: object, message: str) -> None:
    with pytest.raises(fields.Invalid) as info:
        config.parse(data)
    assert str(info.value) == message


def test_defaults_and_numeric_text() -> None:
    cfg = config.parse({"drivers": {"x": {"endpoint": ENDPOINT, "timeout": "2.5"}}})
    assert cfg.drivers["x"] == config.DriverConfig(endpoint=ENDPOINT, timeout=2.5)
    assert cfg.node == "local"
    assert cfg.nodes == {}


def test_models_are_frozen() -> None:
    cfg = config.parse({"drivers": {"x": {"endpoint": ENDPOINT}}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.drivers["x"].timeout = 1  # type: ignore[misc]


def test_secrets_reach_requests_but_no_text(tmp_path: pathlib.Path) -> None:
    cfg = config.parse(
        {"drivers": {"x": {"endpoint": ENDPOINT, "secrets": {"password": "canary-1"}}}}
    )
    assert cfg.drivers["x"].secret_values() == {"password": "canary-1"}
    assert "canary-1" not in repr(cfg) + str(cfg.drivers["x"].secrets["password"])
    path = tmp_path / "config.yaml"
    path.write_text("drivers: {x: {endpoint: e, secrets: {password: canary-2}, timeout: -1}}")
    with pytest.raises(errors.InvalidInput) as info:
        config.load(path)
    assert "canary-2" not in str(info.value)
    assert (
        str(info.value)
        == f"{path}: drivers.x.timeout: must be a number of seconds above 0 and at most 3600"
    )
