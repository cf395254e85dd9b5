"""Kubernetes API failures, mapped once into the csi-vm error tree.

HTTP statuses follow their API meaning: 401/403 mean these credentials cannot
do this (fix the kubeconfig or RBAC, retrying will not help); 404 means the
object or API is not there; 409 AlreadyExists means a name is taken, while 409
Conflict means a stale write that may work after a re-read; 410 Gone means a
watch asked for history the server no longer keeps (`Expired`: list again);
429 and 5xx are transient. A server that does not answer at all is
`errors.Unreachable`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import urllib3.exceptions

from csi_vm import errors

# API bodies can echo request data; cap what reaches our messages (the same
# reason kopf truncates API bodies in its logs).
_MAX_DETAIL = 300

_CONNECTION_PREFIX = re.compile(r"^<?[\w.]+Connection(Pool)?\b[^:]*>?: ")


class Expired(errors.Rejected):
    """The resourceVersion a watch started from is older than the server's history.

    Watching again from it cannot work; list again and watch from the list.
    """


_BY_STATUS: dict[int, type[errors.CsiVmError]] = {
    400: errors.InvalidInput,
    401: errors.Rejected,
    403: errors.Rejected,
    404: errors.NotFound,
    409: errors.AlreadyExists,
    410: Expired,
    422: errors.InvalidInput,
    429: errors.Busy,
}


def from_status(
    *, status: int, body: str | bytes | None, verb: str, what: str, server: str
) -> errors.CsiVmError:
    """The csi-vm error for an HTTP error answer; callers ``raise ... from err``."""
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    reason, detail = _status_of(body)
    cls = _class_for(status, reason)
    message = f"{verb} {what} on {server} failed: HTTP {status}"
    if detail:
        message += f": {detail}"
    return cls(message, hint=_hint(status, verb=verb, what=what))


def from_api_exception(err: Any, *, verb: str, what: str, server: str) -> errors.CsiVmError:
    """The csi-vm error for the client's ApiException."""
    # An ERROR event inside a watch stream reaches us as an ApiException that
    # carries only the status and its "Reason: message" text, no body.
    return from_status(
        status=int(err.status or 0),
        body=err.body or err.reason,
        verb=verb,
        what=what,
        server=server,
    )


def from_transport(err: Exception, *, verb: str, what: str, server: str) -> errors.CsiVmError:
    """The csi-vm error for a request that got no HTTP answer."""
    cause = getattr(err, "reason", None) or err
    if isinstance(cause, urllib3.exceptions.SSLError):
        return errors.Rejected(
            f"{verb} {what} on {server} failed: TLS: {_short(str(cause))}",
            hint="the server's certificate does not match the kubeconfig's certificate-authority",
        )
    return errors.Unreachable(
        f"{verb} {what} on {server} failed: no answer ({_short(_describe(cause))})",
        hint="is the API server running and reachable? check the kubeconfig's server "
        "address and current context",
    )


def _class_for(status: int, reason: str) -> type[errors.CsiVmError]:
    if status == 409 and reason == "Conflict":
        return errors.Busy  # someone else wrote first: re-read and try again
    if status in (502, 503, 504):
        return errors.Unreachable
    if status >= 500:
        return errors.Transient
    return _BY_STATUS.get(status, errors.OperationFailed)


def _hint(status: int, *, verb: str, what: str) -> str | None:
    if status == 401:
        return (
            "the API server did not accept the credentials: check the kubeconfig's user "
            "(expired token or client certificate?)"
        )
    if status == 403:
        return (
            f"the credentials lack RBAC permission to {verb} {what}: grant it in a "
            f"ClusterRole, or check with `kubectl auth can-i {verb} {what}`"
        )
    if status == 404:
        return "the object, or the API that serves it, is not in this cluster"
    return None


def _status_of(body: str | None) -> tuple[str, str]:
    """Reason and message of a Status body; plain-text bodies become the message."""
    if not body:
        return "", ""
    try:
        data = json.loads(body)
    except ValueError:
        return "", _short(body.strip())
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("reason") or ""), _short(str(data.get("message") or ""))


def _describe(err: BaseException) -> str:
    # urllib3 prefixes its errors with the connection (pool)'s repr, which
    # repeats the server address the message names already.
    return _CONNECTION_PREFIX.sub("", str(err))


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL] + "..."
