"""The unix sockets the driver serves gRPC on: its CSI socket and its kubelet registration socket.

Both follow one rule: a socket file is removed only when it is certainly not
another live process's. At start, a file nobody answers on (a crash's
leftover) is removed and one that answers is refused. At exit, the driver
removes the file only if it is still the one it bound (same device and inode):
a process that took over the path meanwhile keeps its socket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import socket
from collections.abc import Iterator

import grpc

from csi_vm import errors

log = logging.getLogger(__name__)

#: owner and group may connect; others may not (the CO's socket convention)
SOCKET_MODE = 0o660
#: sockaddr_un.sun_path is 108 bytes on Linux, including the terminating NUL
MAX_PATH_BYTES = 107
#: seconds in-flight RPCs get to finish after SIGTERM
STOP_GRACE_S = 5.0


@dataclasses.dataclass(frozen=True)
class Bound:
    """A socket file this process bound, and how to recognise it later."""

    path: pathlib.Path
    identity: tuple[int, int]  # (st_dev, st_ino) right after binding

    def remove(self) -> None:
        """Unlink the socket file, unless another process has replaced it since."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if (info.st_dev, info.st_ino) != self.identity:
            log.warning("leaving %s alone: another process has bound it since", self.path)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def clear_stale(path: pathlib.Path, *, option: str) -> None:
    """Remove a socket file left by a crash; refuse one that a live process answers on."""
    if not os.path.lexists(path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fspath(path))
        except OSError:
            path.unlink()  # nobody listens: left over from a crash
            return
    raise errors.InvalidInput(
        f"{option}: another process is serving on {path}",
        hint="stop it first, or give this driver another socket path",
    )


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def bind(server: grpc.Server, path: pathlib.Path, *, option: str) -> Bound:
    """Bind `server` to a unix socket at `path` (absolute; its directory exists)."""
    if len(os.fsencode(path)) > MAX_PATH_BYTES:
        raise errors.InvalidInput(
            f"{option}: socket path {path} is longer than {MAX_PATH_BYTES} bytes",
            hint="unix socket paths must fit in sockaddr_un; choose a shorter directory",
        )
    clear_stale(path, option=option)
    with _umask(0o777 & ~SOCKET_MODE):  # the socket is born with the right mode
        try:
            port = server.add_insecure_port(f"unix://{path}")
        except RuntimeError as err:  # grpc raises when it cannot bind
            raise errors.InvalidInput(f"{option}: cannot listen on {path}") from err
    if not port:
        raise errors.InvalidInput(f"{option}: cannot listen on {path}")
    os.chmod(path, SOCKET_MODE)
    info = os.lstat(path)
    return Bound(path=path, identity=(info.st_dev, info.st_ino))


@contextlib.contextmanager
def serving(server: grpc.Server, bound: Bound | None) -> Iterator[None]:
    """Run a bound server for the block; then stop it gracefully and remove its socket."""
    try:
        server.start()
        yield
    finally:
        server.stop(STOP_GRACE_S).wait()
        if bound is not None:
            bound.remove()
