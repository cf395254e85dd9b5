"""gRPC status codes of CSI calls, mapped once into the csi-vm error tree.

The mapping follows the CSI spec's meaning of each code: UNIMPLEMENTED means
the RPC is not offered (take a fallback); INVALID_ARGUMENT, FAILED_PRECONDITION
and OUT_OF_RANGE mean this request cannot work; UNAVAILABLE, ABORTED and
DEADLINE_EXCEEDED are transient and retried by the client.
"""

from __future__ import annotations

import grpc

from csi_vm import errors

_BY_CODE: dict[grpc.StatusCode, type[errors.CsiVmError]] = {
    grpc.StatusCode.UNIMPLEMENTED: errors.Unsupported,
    grpc.StatusCode.INVALID_ARGUMENT: errors.Rejected,
    grpc.StatusCode.FAILED_PRECONDITION: errors.Rejected,
    grpc.StatusCode.OUT_OF_RANGE: errors.OutOfRange,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.OutOfRange,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.ABORTED: errors.Busy,
    grpc.StatusCode.UNAVAILABLE: errors.Unreachable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.Unreachable,
}

TRANSIENT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)

# Driver messages can echo request fields; cap what reaches our messages so a
# misbehaving driver cannot flood logs (and a long echo is never useful).
_MAX_DETAIL = 300


class CsiCallError(errors.CsiVmError):
    """Mixin carrying the RPC name and gRPC code of a failed CSI call."""

    rpc: str = ""
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN


def from_rpc_error(err: grpc.RpcError, *, rpc: str, target: str) -> errors.CsiVmError:
    """Build the csi-vm error for a failed call; callers ``raise ... from err``."""
    code = _code_of(err)
    base = _BY_CODE.get(code, errors.OperationFailed)
    detail = _details_of(err)
    message = f"{rpc} on {target} failed: {code.name}: {detail}"
    cls = _error_class(base)
    exc = cls(message, hint=_hint_for(code))
    exc.rpc = rpc
    exc.code = code
    return exc


def _error_class(base: type[errors.CsiVmError]) -> type[CsiCallError]:
    cls = _CLASSES.get(base)
    if cls is None:
        # One subclass per base, so `except errors.NotFound` still matches and
        # the RPC name and code ride along for reports.
        cls = type(f"Csi{base.__name__}", (CsiCallError, base), {})
        _CLASSES[base] = cls
    return cls


_CLASSES: dict[type[errors.CsiVmError], type[CsiCallError]] = {}


def _code_of(err: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(err, "code", None)
    if callable(code):
        value = code()
        if isinstance(value, grpc.StatusCode):
            return value
    return grpc.StatusCode.UNKNOWN


def _details_of(err: grpc.RpcError) -> str:
    details = getattr(err, "details", None)
    text = details() if callable(details) else None
    if not isinstance(text, str) or not text:
        return "(no details)"
    if len(text) > _MAX_DETAIL:
        return text[:_MAX_DETAIL] + "..."
    return text


def _hint_for(code: grpc.StatusCode) -> str | None:
    if code == grpc.StatusCode.UNAVAILABLE:
        return "is the driver running and is the endpoint right?"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "the driver did not answer in time; it may be hung or overloaded"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return "the driver does not offer this RPC"
    return None
