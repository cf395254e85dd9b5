"""The client over a real gRPC unix socket, against a scripted Identity/Controller server.

The server here is a test double of a CSI driver (scripted answers), but the
channel, deadlines, status codes and retries are all real gRPC.
"""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from csi_vm import errors
from csi_vm.csi import client, models, retry
from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.csi.pb import csi_pb2_grpc as pb_grpc


class ScriptedIdentity(pb_grpc.IdentityServicer):
    def __init__(self) -> None:
        self.failures: list[grpc.StatusCode] = []
        self.hang = 0.0
        self.calls = 0

    def GetPluginInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls += 1
        if self.hang:
            time.sleep(self.hang)
        if self.failures:
            context.abort(self.failures.pop(0), "scripted failure")
        return pb.GetPluginInfoResponse(name="scripted.csi.test", vendor_version="1.0")


class RecordingController(pb_grpc.ControllerServicer):
    def __init__(self) -> None:
        self.secrets: list[dict[str, str]] = []

    def CreateVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.secrets.append(dict(request.secrets))
        vol = pb.Volume(volume_id="v-1", capacity_bytes=request.capacity_range.required_bytes)
        return pb.CreateVolumeResponse(volume=vol)


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[tuple[str, ScriptedIdentity, RecordingController]]:
    identity, controller = ScriptedIdentity(), RecordingController()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_IdentityServicer_to_server(identity, srv)
    pb_grpc.add_ControllerServicer_to_server(controller, srv)
    sock = tmp_path / "csi.sock"
    srv.add_insecure_port(f"unix:{sock}")
    srv.start()
    yield f"unix://{sock}", identity, controller
    srv.stop(grace=None)


def test_plugin_info_round_trip(server: tuple[str, ScriptedIdentity, RecordingController]) -> None:
    ep, _, _ = server
    with client.Client(ep) as c:
        assert c.plugin_info() == models.PluginInfo(name="scripted.csi.test", vendor_version="1.0")


def test_transient_codes_are_retried(
    server: tuple[str, ScriptedIdentity, RecordingController], caplog: pytest.LogCaptureFixture
) -> None:
    ep, identity, _ = server
    identity.failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED]
    policy = retry.RetryPolicy(attempts=4, first_delay=0.01)
    with caplog.at_level(logging.INFO), client.Client(ep, policy=policy) as c:
        assert c.plugin_info().name == "scripted.csi.test"
    assert identity.calls == 3
    assert "attempt 2/4 failed" in caplog.text


def test_rejections_are_not_retried(
    server: tuple[str, ScriptedIdentity, RecordingController],
) -> None:
    ep, identity, _ = server
    identity.failures = [grpc.StatusCode.INVALID_ARGUMENT]
    with client.Client(ep) as c, pytest.raises(errors.Rejected, match="GetPluginInfo"):
        c.plugin_info()
    assert identity.calls == 1


def test_deadline_on_a_hung_call(server: tuple[str, ScriptedIdentity, RecordingController]) -> None:
    ep, identity, _ = server
    identity.hang = 1.0
    started = time.monotonic()
    with (
        client.Client(ep, timeout=0.2, policy=retry.NO_RETRY) as c,
        pytest.raises(errors.Unreachable),
    ):
        c.plugin_info()
    assert time.monotonic() - started < 0.9


def test_missing_socket_is_unreachable(tmp_path: pathlib.Path) -> None:
    policy = retry.RetryPolicy(attempts=2, first_delay=0.01)
    c = client.Client(str(tmp_path / "none.sock"), timeout=1.0, policy=policy)
    with c, pytest.raises(errors.Unreachable) as info:
        c.plugin_info()
    assert info.value.hint and "running" in info.value.hint


def test_secrets_reach_the_driver_but_not_the_logs(
    server: tuple[str, ScriptedIdentity, RecordingController], caplog: pytest.LogCaptureFixture
) -> None:
    ep, _, controller = server
    canary = "canary-secret-5d1e"
    cap = models.VolumeCapability(
        mode=models.VolumeMode.BLOCK, access=models.AccessMode.SINGLE_NODE_WRITER
    )
    with (
        caplog.at_level(logging.DEBUG),
        client.Client(ep, secrets=models.Secrets({"key": canary})) as c,
    ):
        vol = c.create_volume("v", size=4096, capabilities=(cap,))
        text = repr(c) + repr(vol)
    assert controller.secrets == [{"key": canary}]
    assert canary not in caplog.text
    assert canary not in text


def test_concurrent_calls_share_one_channel(
    server: tuple[str, ScriptedIdentity, RecordingController],
) -> None:
    ep, identity, _ = server
    with client.Client(ep) as c:
        threads = [threading.Thread(target=c.plugin_info) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert identity.calls == 8
