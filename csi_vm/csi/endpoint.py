"""Endpoint strings as users write them, turned into gRPC targets."""

from __future__ import annotations

import os
import re

from csi_vm import errors

# host:port with a numeric port; the host part may be a name, IPv4 or [IPv6].
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")


def to_target(endpoint: str) -> str:
    """Return the gRPC target for ``unix:///path``, a bare path or ``tcp://host:port``."""
    text = endpoint.strip()
    if not text:
        raise errors.InvalidInput(
            "endpoint is empty",
            hint="give unix:///path/to/csi.sock, a socket path, or tcp://host:port",
        )
    if text.startswith("unix://"):
        return _unix_target(text.removeprefix("unix://"), endpoint)
    if text.startswith("unix:"):
        return _unix_target(text.removeprefix("unix:"), endpoint)
    if text.startswith("tcp://"):
        return _tcp_target(text.removeprefix("tcp://"), endpoint)
    if "://" in text:
        raise errors.InvalidInput(
            f"endpoint {endpoint!r} has an unknown scheme",
            hint="use unix:///path or tcp://host:port",
        )
    return _unix_target(text, endpoint)


def socket_path(endpoint: str) -> str | None:
    """The filesystem path of a unix endpoint, or None for TCP."""
    target = to_target(endpoint)
    if target.startswith("unix:"):
        return target.removeprefix("unix:")
    return None


def _unix_target(path: str, original: str) -> str:
    if not path:
        raise errors.InvalidInput(f"endpoint {original!r} names no socket path")
    # gRPC resolves relative unix paths against its own cwd; make them absolute
    # so that a process started elsewhere reaches the same socket.
    return "unix:" + os.path.abspath(path)


def _tcp_target(host_port: str, original: str) -> str:
    match = _HOST_PORT.match(host_port)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise errors.InvalidInput(
            f"endpoint {original!r} is not tcp://host:port",
            hint="for example tcp://127.0.0.1:10000",
        )
    return host_port
