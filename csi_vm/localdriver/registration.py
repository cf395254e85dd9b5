"""Register the driver with the kubelet itself, as the node-driver-registrar sidecar would.

The kubelet's plugin watcher watches <kubelet-dir>/plugins_registry/ for unix
sockets. On a new one it calls GetInfo to learn the plugin's type, name and
where its CSI socket is on the host, registers the driver (it calls
NodeGetInfo on that socket) and reports the outcome with
NotifyRegistrationStatus. Removing the socket deregisters the driver, so the
socket lives exactly as long as the driver serves CSI.
"""

# ruff: noqa: N802  (method names are fixed by the registration service definition)

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import Iterator
from concurrent import futures

import grpc

from csi_vm import errors
from csi_vm.csi.pb import pluginregistration_pb2 as pb
from csi_vm.csi.pb import pluginregistration_pb2_grpc as pb_grpc
from csi_vm.localdriver import rpc_identity, rpc_status, sockets
from csi_vm.localdriver.config import KubeletRegistration

log = logging.getLogger(__name__)

#: the plugin type the kubelet hands to its CSI plugin handler
PLUGIN_TYPE = "CSIPlugin"
#: versions of the kubelet's CSI plugin API; the kubelet takes any 1.x, and
#: node-driver-registrar has always offered exactly this one
SUPPORTED_VERSIONS = ("1.0.0",)
#: the kubelet calls GetInfo and NotifyRegistrationStatus one after the other
_WORKERS = 2


def socket_path(directory: pathlib.Path, name: str = rpc_identity.PLUGIN_NAME) -> pathlib.Path:
    """The registration socket in the kubelet's plugins_registry (node-driver-registrar's name)."""
    return directory / f"{name}-reg.sock"


class Registration(pb_grpc.RegistrationServicer):
    def __init__(self, *, csi_endpoint: pathlib.Path, name: str = rpc_identity.PLUGIN_NAME) -> None:
        self._csi_endpoint = csi_endpoint
        self._name = name

    @rpc_status.unary
    def GetInfo(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.PluginInfo:
        return pb.PluginInfo(
            type=PLUGIN_TYPE,
            name=self._name,
            endpoint=str(self._csi_endpoint),
            supported_versions=SUPPORTED_VERSIONS,
        )

    @rpc_status.unary
    def NotifyRegistrationStatus(
        self, request: pb.RegistrationStatus, context: grpc.ServicerContext
    ) -> pb.RegistrationStatusResponse:
        name = self._name
        if request.plugin_registered:
            log.info("the kubelet registered %s (CSI socket %s)", name, self._csi_endpoint)
        else:
            # The kubelet retries by itself; the message is all an operator gets.
            log.error(
                "the kubelet refused to register %s (CSI socket %s): %s",
                name,
                self._csi_endpoint,
                request.error or "no reason given",
            )
        return pb.RegistrationStatusResponse()


@contextlib.contextmanager
def serving(kubelet: KubeletRegistration) -> Iterator[pathlib.Path]:
    """Serve the registration socket for the block; yields its path.

    Start this only once the CSI socket answers: the kubelet calls it as soon
    as it has registered the driver.
    """
    if not kubelet.directory.is_dir():
        raise errors.InvalidInput(
            f"--kubelet-registration-dir {kubelet.directory}: no such directory",
            hint="the kubelet makes <kubelet-dir>/plugins_registry at start; "
            "check the kubelet's root directory and the mount that shows it here",
        )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="kubelet-reg"),
        options=[("grpc.so_reuseport", 0)],
    )
    pb_grpc.add_RegistrationServicer_to_server(
        Registration(csi_endpoint=kubelet.csi_endpoint, name=kubelet.name), server
    )
    path = socket_path(kubelet.directory, kubelet.name)
    bound = sockets.bind(server, path, option="--kubelet-registration-dir")
    with sockets.serving(server, bound):
        log.info("registering with the kubelet through %s", path)
        yield path
