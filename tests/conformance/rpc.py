"""The suite's own door to a CSI endpoint: channels, raw stubs, deadlines.

The suite deliberately does not use ``csi_vm.csi``: it judges drivers (and,
through them, the project's client) from the outside, with nothing but the
generated stubs. Every call carries a deadline so a hung driver fails the test
instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2_grpc

#: Deadline of one call. Node calls may format or copy a volume; a healthy
#: driver answers control calls in milliseconds.
DEADLINE_S = 60.0

#: How long to wait for a freshly given endpoint to accept connections.
CONNECT_TIMEOUT_S = 20.0

Code = grpc.StatusCode


def grpc_target(endpoint: str) -> str:
    """gRPC target for ``unix:///path``, ``unix:path``, a bare path or ``tcp://host:port``."""
    if endpoint.startswith("tcp://"):
        return endpoint.removeprefix("tcp://")
    if endpoint.startswith("unix://"):
        path = endpoint.removeprefix("unix://")
    elif endpoint.startswith("unix:"):
        path = endpoint.removeprefix("unix:")
    elif "://" in endpoint:
        raise ValueError(f"endpoint {endpoint!r}: only unix:// and tcp:// are understood")
    else:
        path = endpoint
    return "unix:" + os.path.abspath(path)


class Service:
    """A stub whose methods carry the suite's deadline; streams come back as lists."""

    def __init__(self, stub: Any, deadline: float) -> None:
        self._stub = stub
        self._deadline = deadline

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)

        def call(request: Any, *, timeout: float | None = None) -> Any:
            answer = method(request, timeout=timeout or self._deadline)
            if isinstance(method, grpc.UnaryStreamMultiCallable):
                return list(answer)
            return answer

        return call


@dataclasses.dataclass
class Csi:
    """Stubs for every CSI service; controller-side ones on the controller endpoint."""

    identity: Service
    controller: Service
    group: Service
    metadata: Service
    node_identity: Service
    node: Service
    channels: list[grpc.Channel]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def _open(endpoint: str) -> grpc.Channel:
    channel = grpc.insecure_channel(grpc_target(endpoint))
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
    except grpc.FutureTimeoutError:
        channel.close()
        raise ConnectionError(f"CSI endpoint {endpoint} did not accept a connection") from None
    return channel


def connect(controller_endpoint: str, node_endpoint: str, *, deadline: float = DEADLINE_S) -> Csi:
    ctl = _open(controller_endpoint)
    node = ctl if node_endpoint == controller_endpoint else _open(node_endpoint)
    return Csi(
        identity=Service(csi_pb2_grpc.IdentityStub(ctl), deadline),
        controller=Service(csi_pb2_grpc.ControllerStub(ctl), deadline),
        group=Service(csi_pb2_grpc.GroupControllerStub(ctl), deadline),
        metadata=Service(csi_pb2_grpc.SnapshotMetadataStub(ctl), deadline),
        node_identity=Service(csi_pb2_grpc.IdentityStub(node), deadline),
        node=Service(csi_pb2_grpc.NodeStub(node), deadline),
        channels=[ctl] if node is ctl else [ctl, node],
    )


@dataclasses.dataclass
class Refusal:
    """What a refused call answered; filled in when the `refused` block ends."""

    code: grpc.StatusCode | None = None
    details: str = ""


@contextlib.contextmanager
def refused(*codes: grpc.StatusCode) -> Iterator[Refusal]:
    """Expect the calls in the block to fail with one of `codes` and a readable message.

    The CSI error scheme requires a human-readable status message on every
    non-OK answer, so an empty message fails the check too.
    """
    names = " or ".join(code.name for code in codes)
    refusal = Refusal()
    try:
        yield refusal
    except grpc.RpcError as err:
        refusal.code = err.code()
        refusal.details = err.details() or ""
        assert refusal.code in codes, (
            f"expected {names}, got {refusal.code.name}: {refusal.details}"
        )
        assert refusal.details.strip(), f"{refusal.code.name} came without a status message"
    else:
        pytest.fail(f"expected {names}, but the call succeeded")


def outcome_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, Any]:
    """Run `call`; return (OK, its answer) or (the error code, None)."""
    try:
        return grpc.StatusCode.OK, call()
    except grpc.RpcError as err:
        code: grpc.StatusCode = err.code()
        return code, None


def outcome(call: Callable[[], Any]) -> Refusal:
    """Run `call` and report how it ended: code OK when it succeeded."""
    try:
        call()
    except grpc.RpcError as err:
        return Refusal(code=err.code(), details=err.details() or "")
    return Refusal(code=grpc.StatusCode.OK)
