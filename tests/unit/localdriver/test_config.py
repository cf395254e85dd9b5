"""Command-line parsing of the local driver."""

from __future__ import annotations

import pathlib

import pytest

from csi_vm import errors
from csi_vm.localdriver import config, registration
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


def test_driver_name_defaults_and_reaches_the_kubelet_registration() -> None:
    assert config.parse_args(BASE).driver_name == config.DEFAULT_DRIVER_NAME
    cfg = config.parse_args(
        [*BASE, "--driver-name", "lite.local.csi-vm.io", "--kubelet-registration-dir", "/reg"]
    )
    assert cfg.driver_name == "lite.local.csi-vm.io"
    assert cfg.kubelet is not None and cfg.kubelet.name == "lite.local.csi-vm.io"


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
        (["--driver-name", "Upper.example.com"], "--driver-name"),
        (["--driver-name", "a" * 64], "--driver-name"),
        (["--pin-volumes"], "--pin-volumes needs --shared"),
    ],
    ids=[
        "unknown-feature",
        "off-and-broken",
        "node-dash",
        "node-long",
        "relative",
        "scheme",
        "name-case",
        "name-long",
        "pin-unshared",
    ],
)
def test_refusals(args: list[str], says: str) -> None:
    with pytest.raises(errors.InvalidInput, match=says):
        config.parse_args([*BASE, *args])


# --- registration with the kubelet ------------------------------------------------------------

REG = ["--kubelet-registration-dir", "/var/lib/kubelet/plugins_registry"]


def test_no_kubelet_registration_by_default() -> None:
    assert config.parse_args(BASE).kubelet is None


def test_kubelet_sees_the_endpoint_path_by_default() -> None:
    kubelet = config.parse_args([*BASE, *REG]).kubelet
    assert kubelet == config.KubeletRegistration(
        directory=pathlib.Path("/var/lib/kubelet/plugins_registry"),
        csi_endpoint=pathlib.Path("/run/x/driver.sock"),
    )


def test_kubelet_csi_endpoint_as_the_host_sees_it() -> None:
    host_path = "/var/lib/kubelet/plugins/csi-vm.local/csi.sock"
    kubelet = config.parse_args([*BASE, *REG, "--kubelet-csi-endpoint", host_path]).kubelet
    assert kubelet is not None
    assert kubelet.csi_endpoint == pathlib.Path(host_path)


def test_help_names_the_registration_socket(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        config.parse_args(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert registration.socket_path(pathlib.Path("DIR"), "<driver name>").as_posix() in help_text
    assert registration.socket_path(pathlib.Path("DIR")).name in help_text


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--kubelet-csi-endpoint", "/var/lib/kubelet/plugins/x/csi.sock"], "needs --kubelet-reg"),
        ([*REG, "--kubelet-csi-endpoint", "plugins/x/csi.sock"], "absolute"),
        (["--endpoint", "tcp://127.0.0.1:9000", *REG], "unix --endpoint"),
    ],
    ids=["endpoint-alone", "relative-endpoint", "tcp"],
)
def test_kubelet_refusals(args: list[str], says: str) -> None:
    with pytest.raises(errors.InvalidInput, match=says):
        config.parse_args([*BASE, *args])
