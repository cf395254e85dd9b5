"""Registration with the kubelet: the driver process serves pluginregistration.Registration.

A real gRPC client plays the kubelet's plugin watcher over the real unix
socket: GetInfo, then NotifyRegistrationStatus. The socket rules are the CSI
socket's: a crash's leftover is replaced, a live process's socket is never
touched, and the driver's own socket goes away when it stops.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2, csi_pb2_grpc
from csi_vm.csi.pb import pluginregistration_pb2 as reg_pb
from csi_vm.csi.pb import pluginregistration_pb2_grpc as reg_grpc
from csi_vm.localdriver import registration, rpc_identity
from tests.support import driverproc

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: where a DaemonSet's kubelet would find the CSI socket on the host
HOST_CSI_SOCKET = "/var/lib/kubelet/plugins/csi-vm.local/csi.sock"
#: the driver serves registration a moment after its CSI socket answers
READY_WITHIN_S = 15.0


@pytest.fixture
def registry() -> Iterator[pathlib.Path]:
    """A stand-in for <kubelet-dir>/plugins_registry; short, so socket paths fit sockaddr_un."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="reg-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _args(registry: pathlib.Path, *extra: str) -> list[str]:
    return ["--kubelet-registration-dir", str(registry), *extra]


def _get_info(path: pathlib.Path) -> reg_pb.PluginInfo:
    with grpc.insecure_channel(f"unix://{path}") as channel:
        return reg_grpc.RegistrationStub(channel).GetInfo(reg_pb.InfoRequest(), timeout=5)


def _wait_for_registration(drv: driverproc.DriverProcess, path: pathlib.Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if path.exists():
            try:
                _get_info(path)
            except grpc.RpcError:
                pass
            else:
                return
        time.sleep(0.05)
    pytest.fail(f"no registration socket at {path}:\n{drv.log_text()[-4000:]}")


@pytest.fixture
def registered(
    tmp_path: pathlib.Path, registry: pathlib.Path
) -> Iterator[tuple[driverproc.DriverProcess, pathlib.Path]]:
    args = _args(registry, "--kubelet-csi-endpoint", HOST_CSI_SOCKET)
    drv = driverproc.start_driver(tmp_path / "driver", extra_args=args)
    path = registration.socket_path(registry)
    _wait_for_registration(drv, path)
    yield drv, path
    drv.stop()


def test_the_kubelet_learns_name_type_and_host_socket(
    registered: tuple[driverproc.DriverProcess, pathlib.Path],
) -> None:
    _, path = registered
    assert path.name == f"{rpc_identity.PLUGIN_NAME}-reg.sock"
    info = _get_info(path)
    assert info.type == "CSIPlugin"
    assert info.name == rpc_identity.PLUGIN_NAME
    assert info.endpoint == HOST_CSI_SOCKET
    assert list(info.supported_versions) == ["1.0.0"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o660


def test_endpoint_defaults_to_the_driver_socket(
    tmp_path: pathlib.Path, registry: pathlib.Path
) -> None:
    drv = driverproc.start_driver(tmp_path / "driver", extra_args=_args(registry))
    try:
        path = registration.socket_path(registry)
        _wait_for_registration(drv, path)
        assert _get_info(path).endpoint == str(drv.socket_path)
    finally:
        drv.stop()


def test_a_named_driver_registers_and_answers_under_its_name(
    tmp_path: pathlib.Path, registry: pathlib.Path
) -> None:
    name = "lite.local.csi-vm.io"
    args = ["--driver-name", name, *_args(registry)]
    drv = driverproc.start_driver(tmp_path / "driver", extra_args=args)
    try:
        path = registration.socket_path(registry, name)
        _wait_for_registration(drv, path)
        assert path.name == f"{name}-reg.sock"
        assert _get_info(path).name == name
        with grpc.insecure_channel(drv.endpoint) as channel:
            info = csi_pb2_grpc.IdentityStub(channel).GetPluginInfo(
                csi_pb2.GetPluginInfoRequest(), timeout=5
            )
        assert info.name == name
    finally:
        drv.stop()


def _notify(path: pathlib.Path, *, registered: bool, error: str = "") -> None:
    status = reg_pb.RegistrationStatus(plugin_registered=registered, error=error)
    with grpc.insecure_channel(f"unix://{path}") as channel:
        reply = reg_grpc.RegistrationStub(channel).NotifyRegistrationStatus(status, timeout=5)
    assert reply == reg_pb.RegistrationStatusResponse()


def _log_lines(drv: driverproc.DriverProcess, needle: str) -> list[str]:
    return [line for line in drv.log_text().splitlines() if needle in line]


def test_registration_status_is_logged(
    registered: tuple[driverproc.DriverProcess, pathlib.Path],
) -> None:
    drv, path = registered
    _notify(path, registered=True)
    accepted = _log_lines(drv, "the kubelet registered")
    assert len(accepted) == 1 and " INFO " in accepted[0] and HOST_CSI_SOCKET in accepted[0]

    reason = "error validating CSI driver name: csi-vm.local already registered"
    _notify(path, registered=False, error=reason)
    refused = _log_lines(drv, reason)
    assert len(refused) == 1 and " ERROR " in refused[0]


def test_both_sockets_are_removed_at_exit(
    registered: tuple[driverproc.DriverProcess, pathlib.Path],
) -> None:
    drv, path = registered
    assert drv.stop() == 0
    assert not path.exists()
    assert not drv.socket_path.exists()


def _leftover_socket(path: pathlib.Path) -> None:
    """A socket file nobody listens on any more, as a killed driver leaves it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))


def test_a_crashed_drivers_registration_socket_is_replaced(
    tmp_path: pathlib.Path, registry: pathlib.Path
) -> None:
    path = registration.socket_path(registry)
    _leftover_socket(path)
    drv = driverproc.start_driver(tmp_path / "driver", extra_args=_args(registry))
    try:
        _wait_for_registration(drv, path)
    finally:
        drv.stop()
    assert not path.exists()


def test_a_live_registration_socket_is_never_taken(
    tmp_path: pathlib.Path, registry: pathlib.Path
) -> None:
    path = registration.socket_path(registry)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
        other.bind(str(path))
        other.listen()
        identity = os.stat(path).st_ino
        csi_socket = pathlib.Path(tempfile.mkdtemp(prefix="csi-")) / "csi.sock"
        done = driverproc.run_to_exit(
            [
                *("--endpoint", f"unix://{csi_socket}"),
                *("--state-dir", str(tmp_path / "state"), "--node-id", "node-a"),
                *_args(registry),
            ]
        )
        assert done.returncode == 2, done.stderr
        assert "another process is serving" in done.stderr
        assert os.stat(path).st_ino == identity  # the other process's socket, untouched
        assert not csi_socket.exists()  # the refused driver cleaned up its own
        shutil.rmtree(csi_socket.parent)
