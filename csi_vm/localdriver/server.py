"""Start the local driver: parse arguments, open the state, serve gRPC until a signal.

`main(argv)` is what the CLI calls; `serve(config)` runs a parsed config.
With --kubelet-registration-dir it also registers with the kubelet once the
CSI socket answers. SIGTERM and SIGINT stop the servers gracefully (in-flight
RPCs get a few seconds) and remove their sockets, then close the state database.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import TYPE_CHECKING

from csi_vm import errors
from csi_vm.localdriver.config import DriverConfig, Endpoint, parse_args

if TYPE_CHECKING:
    import grpc

    from csi_vm.localdriver import context, sockets

# gRPC, the bindings and the state are imported by the functions that serve:
# `csi-vm localdriver --help` and a usage error need only the arguments.

log = logging.getLogger(__name__)

#: gRPC handler threads; CSI sidecars rarely run more than a handful of calls at once
MAX_WORKERS = 16


def build_server(ctx: context.Context) -> grpc.Server:
    import grpc  # noqa: PLC0415 - see the imports

    from csi_vm.csi.pb import csi_pb2_grpc  # noqa: PLC0415 - see the imports
    from csi_vm.localdriver import (  # noqa: PLC0415 - see the imports
        rpc_controller,
        rpc_group,
        rpc_identity,
        rpc_node,
    )

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


def bind(server: grpc.Server, endpoint: Endpoint) -> sockets.Bound | None:
    """Bind the CSI server to its endpoint; the socket file it made, for a unix one."""
    from csi_vm.localdriver import sockets  # noqa: PLC0415 - see the imports

    if endpoint.socket_path is None:
        try:
            port = server.add_insecure_port(endpoint.address)
        except RuntimeError as err:  # grpc raises when the port is taken
            raise errors.InvalidInput(f"--endpoint: cannot listen on {endpoint.address}") from err
        if not port:
            raise errors.InvalidInput(f"--endpoint: cannot listen on {endpoint.address}")
        return None
    endpoint.socket_path.parent.mkdir(parents=True, exist_ok=True)
    return sockets.bind(server, endpoint.socket_path, option="--endpoint")


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
    from csi_vm.localdriver import context, registration, sockets  # noqa: PLC0415 - see the imports

    stop = stop or threading.Event()
    if config.endpoint.socket_path is not None:
        # Before the state dir is opened: a second start of a running driver
        # must not sweep, claim or clean up anything of the first one's.
        sockets.clear_stale(config.endpoint.socket_path, option="--endpoint")
    ctx = context.open_context(config)
    try:
        # Exit unwinds in reverse: the kubelet loses the registration socket
        # (and deregisters the driver) before the CSI socket goes away.
        with _stop_on_signals(stop), contextlib.ExitStack() as running:
            server = build_server(ctx)
            running.enter_context(sockets.serving(server, bind(server, config.endpoint)))
            log.info(
                "local CSI driver for node %s listening on %s (state %s)",
                config.node_id,
                config.endpoint.address,
                config.state_dir,
            )
            if config.kubelet is not None:
                running.enter_context(registration.serving(config.kubelet))
            stop.wait()
            log.info("stopping")
    finally:
        ctx.db.close()


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
        print(f"csi-vm localdriver: error: {err}", file=sys.stderr)
        return err.exit_code
    return 0
