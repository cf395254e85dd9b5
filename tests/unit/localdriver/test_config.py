"""Command-line parsing of the local driver."""

from __future__ import annotations

import pathlib

import pytest

from csi_vm import errors
from csi_vm.localdriver import config
from csi_vm.localdriver.config import Feature

BASE = ["--endpoint", "unix:///run/x/driver.sock", "--state-dir", "/var/lib/x", "--node-id", "n1"]


def test_defaults() -> None:
    cfg = config.parse_args(BASE)
    assert cfg.endpoint.socket_path == pathlib.Path("/run/x/driver.sock")
    assert cfg.endpoint.address == "unix:///run/x/driver.sock"
    assert cfg.node_id == "n1"
    assert not cfg.shared
    assert all(cfg.offers(f) for f in Feature)
    assert not any(cfg.is_broken(f) for f in Feature)


def test_features_repeated_and_comma_separated() -> None:
    cfg = config.parse_args([*BASE, "--without", "snapshot,clone", "--without", "block"])
    assert cfg.without == {Feature.SNAPSHOT, Feature.CLONE, Feature.BLOCK}
    assert cfg.offers(Feature.GROUP_SNAPSHOT)  # switches are independent


def test_broken_and_shared() -> None:
    cfg = config.parse_args([*BASE, "--advertise-broken", "expansion", "--shared"])
    assert cfg.shared
    assert cfg.offers(Feature.EXPANSION) and cfg.is_broken(Feature.EXPANSION)


def test_tcp_endpoint() -> None:
    cfg = config.parse_args(["--endpoint", "tcp://127.0.0.1:9000", *BASE[2:]])
    assert cfg.endpoint.address == "127.0.0.1:9000"
    assert cfg.endpoint.socket_path is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--without", "teleport"], "unknown feature"),
        (["--without", "clone", "--advertise-broken", "clone"], "both"),
        (["--node-id=bad-"], "--node-id"),
        (["--node-id", "x" * 64], "--node-id"),
        (["--endpoint", "unix://relative.sock"], "absolute"),
        (["--endpoint", "http://x"], "scheme"),
    ],
    ids=["unknown-feature", "off-and-broken", "node-dash", "node-long", "relative", "scheme"],
)
def test_refusals(args: list[str], says: str) -> None:
    with pytest.raises(errors.InvalidInput, match=says):
        config.parse_args([*BASE, *args])
