"""Turn the driver's exceptions into gRPC status codes, once, for every RPC.

Each handler is wrapped by `unary` or `streaming`: an error from the project
tree becomes its CSI status code with the error's message; anything else is a
driver bug and becomes INTERNAL, logged with its traceback. Requests are never
logged (they may carry secrets and mount flags), only the method and outcome.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import grpc

from csi_vm import errors
from csi_vm.localdriver import faults

log = logging.getLogger(__name__)

S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")

# Most specific first: the first class an error is an instance of wins.
_CODES: tuple[tuple[type[errors.CsiVmError], grpc.StatusCode], ...] = (
    (faults.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (faults.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (faults.InvalidToken, grpc.StatusCode.ABORTED),
    (faults.BrokenOnPurpose, grpc.StatusCode.INTERNAL),
    (errors.InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.OutOfRange, grpc.StatusCode.OUT_OF_RANGE),
    (errors.Rejected, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Busy, grpc.StatusCode.ABORTED),
    (errors.Transient, grpc.StatusCode.UNAVAILABLE),
    (errors.Unsupported, grpc.StatusCode.UNIMPLEMENTED),
)


def code_for(err: errors.CsiVmError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(err, cls):
            return code
    return grpc.StatusCode.INTERNAL  # OperationFailed, DataSafetyError


def _abort(context: grpc.ServicerContext, method: str, err: Exception) -> NoReturn:
    if isinstance(err, errors.CsiVmError):
        code, message = code_for(err), str(err)
        log.info("%s -> %s: %s", method, code.name, message)
    else:
        code = grpc.StatusCode.INTERNAL
        message = f"{method} failed unexpectedly: {type(err).__name__}: {err}"
        log.exception("%s failed unexpectedly", method)
    context.abort(code, message)


def unary(
    fn: Callable[[S, Req, grpc.ServicerContext], Resp],
) -> Callable[[S, Req, grpc.ServicerContext], Resp]:
    method = fn.__name__

    @functools.wraps(fn)
    def handler(self: S, request: Req, context: grpc.ServicerContext) -> Resp:
        started = time.monotonic()
        try:
            response = fn(self, request, context)
        except Exception as err:  # every error must become a status
            _abort(context, method, err)
        log.debug("%s ok in %.1f ms", method, (time.monotonic() - started) * 1000)
        return response

    return handler


def streaming(
    fn: Callable[[S, Req, grpc.ServicerContext], Iterator[Resp]],
) -> Callable[[S, Req, grpc.ServicerContext], Iterator[Resp]]:
    method = fn.__name__

    @functools.wraps(fn)
    def handler(self: S, request: Req, context: grpc.ServicerContext) -> Iterator[Resp]:
        try:
            yield from fn(self, request, context)
        except Exception as err:  # every error must become a status
            _abort(context, method, err)

    return handler
