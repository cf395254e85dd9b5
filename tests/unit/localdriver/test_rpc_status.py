"""Every error of the tree maps to one CSI status code."""

from __future__ import annotations

import grpc
import pytest

from csi_vm import errors
from csi_vm.localdriver import faults, rpc_status

Code = grpc.StatusCode


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidInput, Code.INVALID_ARGUMENT),
        (errors.NotFound, Code.NOT_FOUND),
        (errors.AlreadyExists, Code.ALREADY_EXISTS),
        (errors.OutOfRange, Code.OUT_OF_RANGE),
        (errors.Busy, Code.ABORTED),
        (errors.Unsupported, Code.UNIMPLEMENTED),
        (errors.Unreachable, Code.UNAVAILABLE),
        (errors.OperationFailed, Code.INTERNAL),
        (errors.DataSafetyError, Code.INTERNAL),
        (faults.FailedPrecondition, Code.FAILED_PRECONDITION),
        (faults.ResourceExhausted, Code.RESOURCE_EXHAUSTED),
        (faults.InvalidToken, Code.ABORTED),
        (faults.BrokenOnPurpose, Code.INTERNAL),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else v.name,
)
def test_code_for(error: type[errors.CsiVmError], code: grpc.StatusCode) -> None:
    assert rpc_status.code_for(error("x")) == code


class _Aborted(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.aborted: tuple[grpc.StatusCode, str] | None = None

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted = (code, details)
        raise _Aborted


class Service:
    @rpc_status.unary
    def Fails(self, request: str, context: grpc.ServicerContext) -> str:
        raise errors.NotFound(f"volume_id: volume {request!r} does not exist")

    @rpc_status.unary
    def Crashes(self, request: str, context: grpc.ServicerContext) -> str:
        raise KeyError(request)

    @rpc_status.streaming
    def Streams(self, request: str, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        yield 1
        raise errors.OutOfRange("starting_offset beyond the end")


def test_unary_maps_errors_to_status() -> None:
    ctx = FakeContext()
    with pytest.raises(_Aborted):
        Service().Fails("v1", ctx)  # type: ignore[arg-type]
    assert ctx.aborted == (Code.NOT_FOUND, "volume_id: volume 'v1' does not exist")


def test_unexpected_exception_is_internal() -> None:
    ctx = FakeContext()
    with pytest.raises(_Aborted):
        Service().Crashes("k", ctx)  # type: ignore[arg-type]
    assert ctx.aborted is not None
    assert ctx.aborted[0] == Code.INTERNAL and "KeyError" in ctx.aborted[1]


def test_streaming_error_after_first_message() -> None:
    ctx = FakeContext()
    stream = Service().Streams("s", ctx)  # type: ignore[arg-type]
    assert next(stream) == 1
    with pytest.raises(_Aborted):
        next(stream)
    assert ctx.aborted is not None and ctx.aborted[0] == Code.OUT_OF_RANGE
