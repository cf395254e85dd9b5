"""Start the local driver: parse arguments, open the state, serve gRPC until a signal.

`main(argv)` is what the CLI calls; `serve(config)` runs a parsed config.
SIGTERM and SIGINT stop the server gracefully (in-flight RPCs get a few
seconds), then the state database is closed and the socket removed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc

from csi_vm import errors
from csi_vm.csi.pb import csi_pb2_grpc
from csi_vm.localdriver import context, rpc_controller, rpc_group, rpc_identity, rpc_node
from csi_vm.localdriver.config import DriverConfig, Endpoint, parse_args

log = logging.getLogger(__name__)

#: gRPC handler threads; CSI sidecars rarely run more than a handful of calls at once
MAX_WORKERS = 16
#: seconds in-flight RPCs get to finish after SIGTERM
STOP_GRACE_S = 5.0
#: owner and group may connect; others may not (the CO's socket convention)
SOCKET_MODE = 0o660


def build_server(ctx: context.Context) -> grpc.Server:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="csi"),
        options=[("grpc.so_reuseport", 0)],
    )
    csi_pb2_grpc.add_IdentityServicer_to_server(rpc_identity.Identity(ctx), server)
    csi_pb2_grpc.add_ControllerServicer_to_server(rpc_controller.Controller(ctx), server)
    csi_pb2_grpc.add_NodeServicer_to_server(rpc_node.Node(ctx), server)
    csi_pb2_grpc.add_GroupControllerServicer_to_server(rpc_group.GroupController(ctx), server)
    csi_pb2_grpc.add_SnapshotMetadataServicer_to_server(rpc_group.SnapshotMetadata(ctx), server)
    return server


def _clear_socket(path: os.PathLike[str]) -> None:
    """Remove a stale socket file, but never one a live driver still answers on."""
    if not os.path.lexists(path):
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fspath(path))
        except OSError:
            os.unlink(path)  # nobody listens: left over from a crash
            return
    raise errors.InvalidInput(f"--endpoint: another process is serving on {os.fspath(path)}")


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def bind(server: grpc.Server, endpoint: Endpoint) -> None:
    if endpoint.socket_path is None:
        try:
            port = server.add_insecure_port(endpoint.address)
        except RuntimeError as err:  # grpc raises when the port is taken
            raise errors.InvalidInput(f"--endpoint: cannot listen on {endpoint.address}") from err
        if not port:
            raise errors.InvalidInput(f"--endpoint: cannot listen on {endpoint.address}")
        return
    endpoint.socket_path.parent.mkdir(parents=True, exist_ok=True)
    _clear_socket(endpoint.socket_path)
    with _umask(0o777 & ~SOCKET_MODE):  # the socket is born with the right mode
        server.add_insecure_port(endpoint.address)
    os.chmod(endpoint.socket_path, SOCKET_MODE)


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; embedded callers stop us themselves
        return
    handler: Callable[[int, object], None] = lambda signum, frame: stop.set()  # noqa: E731
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def serve(config: DriverConfig, *, stop: threading.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT (or until `stop` is set by an embedding caller)."""
    stop = stop or threading.Event()
    ctx = context.open_context(config)
    server = build_server(ctx)
    try:
        bind(server, config.endpoint)
        with _stop_on_signals(stop):
            server.start()
            log.info(
                "local CSI driver for node %s listening on %s (state %s)",
                config.node_id,
                config.endpoint.address,
                config.state_dir,
            )
            stop.wait()
            log.info("stopping")
    finally:
        server.stop(STOP_GRACE_S).wait()
        ctx.db.close()
        if config.endpoint.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(config.endpoint.socket_path)


def main(argv: list[str] | None = None) -> int:
    """Entry point for `csi-vm localdriver ...` and `python -m csi_vm.localdriver`."""
    try:
        config = parse_args(argv)
    except SystemExit as done:  # argparse: --help, or a usage error already printed
        return done.code if isinstance(done.code, int) else 2
    except errors.CsiVmError as err:
        print(f"csi-vm localdriver: {err}", file=sys.stderr)
        return err.exit_code
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        serve(config)
    except errors.CsiVmError as err:
        log.error("%s", err)
        return err.exit_code
    return 0
