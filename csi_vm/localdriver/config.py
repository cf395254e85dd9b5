"""What the local driver is told at start: endpoint, state dir, node, feature switches,
and where (if anywhere) it registers with the kubelet.

The one place that knows the command line. Everything else receives a frozen
`DriverConfig` and asks it `offers(feature)` / `is_broken(feature)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import logging
import pathlib
import re
from collections.abc import Iterable, Sequence
from typing import TypeVar

from csi_vm import errors
from csi_vm.localdriver import fault_switches


class Feature(enum.StrEnum):
    """Driver features that can be switched off (or advertised broken) one by one."""

    SNAPSHOT = "snapshot"
    CLONE = "clone"
    EXPANSION = "expansion"
    BLOCK = "block"
    MULTI_NODE = "multi-node"
    STAGE_UNSTAGE = "stage-unstage"
    GROUP_SNAPSHOT = "group-snapshot"


#: an option's names: a feature (--without, --advertise-broken) or a fault (--fault)
_Name = TypeVar("_Name", Feature, fault_switches.Fault)

#: the name GetPluginInfo answers unless --driver-name says otherwise
DEFAULT_DRIVER_NAME = "csi-vm.local"
# A CSIDriver object is named after the driver: a DNS subdomain of at most 63
# characters, which is also what the CSI spec allows for a plugin name.
_DRIVER_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?")
# CSI topology values: at most 63 characters, alphanumeric at both ends.
_NODE_ID = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where the gRPC server listens: a unix socket path or a loopback TCP port."""

    address: str  # the form grpc's add_insecure_port() takes
    socket_path: pathlib.Path | None  # set for unix sockets only

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        if text.startswith("unix://"):
            path = pathlib.Path(text.removeprefix("unix://"))
            if not path.is_absolute():
                raise errors.InvalidInput(
                    f"--endpoint {text!r}: the socket path must be absolute",
                    hint="write unix:///abs/path/driver.sock",
                )
            return cls(address=f"unix://{path}", socket_path=path)
        if text.startswith("tcp://"):
            hostport = text.removeprefix("tcp://")
            host, _, port = hostport.rpartition(":")
            if not host or not port.isdigit():
                raise errors.InvalidInput(f"--endpoint {text!r}: expected tcp://HOST:PORT")
            return cls(address=hostport, socket_path=None)
        raise errors.InvalidInput(
            f"--endpoint {text!r}: unsupported scheme",
            hint="use unix:///path/x.sock or tcp://127.0.0.1:PORT",
        )


@dataclasses.dataclass(frozen=True)
class KubeletRegistration:
    """Register with the kubelet's plugin watcher, as node-driver-registrar would."""

    directory: pathlib.Path  # the kubelet's plugins_registry, as this process sees it
    csi_endpoint: pathlib.Path  # the CSI socket, as the kubelet on the host sees it
    name: str = DEFAULT_DRIVER_NAME  # the driver name the kubelet registers


@dataclasses.dataclass(frozen=True)
class DriverConfig:
    """Everything the driver needs to start; immutable once parsed."""

    endpoint: Endpoint
    state_dir: pathlib.Path
    node_id: str
    shared: bool = False
    #: with shared: each volume still lives on one node (see --pin-volumes)
    pinned: bool = False
    without: frozenset[Feature] = frozenset()
    broken: frozenset[Feature] = frozenset()
    log_level: str = "INFO"
    kubelet: KubeletRegistration | None = None
    driver_name: str = DEFAULT_DRIVER_NAME
    #: TEST ONLY: the lies --fault switched on (see `fault_switches`)
    faults: frozenset[fault_switches.Fault] = frozenset()

    def offers(self, feature: Feature) -> bool:
        """True when the feature is switched on (it may still be advertised broken)."""
        return feature not in self.without

    def is_broken(self, feature: Feature) -> bool:
        """True when the feature is advertised but its RPCs fail on purpose (tests only)."""
        return feature in self.broken


def parse_names(
    values: Iterable[str], kind: type[_Name], *, option: str, noun: str
) -> frozenset[_Name]:
    """Parse a repeated option of comma-separated names ("snapshot,clone") into `kind`."""
    found: set[_Name] = set()
    for value in values:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                found.add(kind(item))
            except ValueError:
                known = ", ".join(name.value for name in kind)
                raise errors.InvalidInput(
                    f"{option} {item!r}: unknown {noun}", hint=f"known {noun}s: {known}"
                ) from None
    return frozenset(found)


_EXAMPLE = """example:
  csi-vm localdriver --endpoint unix:///run/csi-vm/local.sock \\
      --state-dir /var/lib/csi-vm/local --node-id node-a --without snapshot,clone"""


class _ExampleFormatter(argparse.HelpFormatter):
    """Prints the example as written: reflowed, it would break options at their hyphens."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text == _EXAMPLE:
            return text
        return super()._fill_text(text, width, indent)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csi-vm localdriver",
        description="Local reference CSI driver: sparse image files, loop devices, SQLite state.",
        epilog=_EXAMPLE,
        formatter_class=_ExampleFormatter,
    )
    parser.add_argument("--endpoint", required=True, help="unix:///path/x.sock or tcp://H:P")
    parser.add_argument("--state-dir", required=True, type=pathlib.Path)
    parser.add_argument("--node-id", required=True)
    parser.add_argument(
        "--driver-name",
        default=DEFAULT_DRIVER_NAME,
        metavar="NAME",
        help="the CSI driver name to answer (and register with the kubelet); run several "
        "drivers on one node under different names, e.g. full.local.csi-vm.io and "
        f"lite.local.csi-vm.io. Default: {DEFAULT_DRIVER_NAME}",
    )
    parser.add_argument(
        "--shared",
        action="store_true",
        help="several instances (different --node-id) share one state dir: simulated "
        "network storage, volumes are not pinned to a node",
    )
    parser.add_argument(
        "--pin-volumes",
        action="store_true",
        help="with --shared: each volume still lives on one node, the first its "
        "CreateVolume's accessibility requirements prefer among the nodes that run an "
        "instance (simulated node-local disks whose controller serves every node)",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="FEATURE[,...]",
        help="switch features off, as many production drivers lack them; repeat or "
        "separate by commas. FEATURE: " + ", ".join(f.value for f in Feature),
    )
    parser.add_argument(
        "--advertise-broken",
        action="append",
        default=[],
        metavar="FEATURE[,...]",
        help="TEST ONLY: keep FEATURE in the capabilities but make its RPCs fail",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME[,...]",
        help="TEST ONLY: answer like a misbehaving driver, e.g. expand-no-grow; "
        "known: " + ", ".join(f.value for f in fault_switches.Fault),
    )
    parser.add_argument("--log-level", default="INFO", choices=list(logging.getLevelNamesMapping()))
    kubelet = parser.add_argument_group(
        "kubelet registration",
        "Register with the kubelet's plugin watcher, so that Kubernetes uses this driver "
        "without a node-driver-registrar sidecar. Needs a unix --endpoint. In a container "
        "that mounts the host's /var/lib/kubelet/plugins/csi-vm.local at /csi and "
        "/var/lib/kubelet/plugins_registry at /registration: --endpoint unix:///csi/csi.sock "
        "--kubelet-registration-dir /registration "
        "--kubelet-csi-endpoint /var/lib/kubelet/plugins/csi-vm.local/csi.sock",
    )
    kubelet.add_argument(
        "--kubelet-registration-dir",
        type=pathlib.Path,
        metavar="DIR",
        help="serve the kubelet's plugin-registration API on DIR/<driver name>-reg.sock "
        f"({DEFAULT_DRIVER_NAME}-reg.sock by default) while the driver runs. DIR is the "
        "kubelet's plugins_registry directory as this process sees it, e.g. "
        "/var/lib/kubelet/plugins_registry",
    )
    kubelet.add_argument(
        "--kubelet-csi-endpoint",
        type=pathlib.Path,
        metavar="PATH",
        help="the --endpoint socket's path as the kubelet on the host sees it; the kubelet "
        "dials it for every CSI call. Give it when this process sees the socket elsewhere (in "
        "a container), e.g. /var/lib/kubelet/plugins/csi-vm.local/csi.sock. "
        "Default: the --endpoint path",
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> DriverConfig:
    """Turn command-line words into a `DriverConfig`; raises InvalidInput on bad values."""
    ns = _build_parser().parse_args(argv)
    without = parse_names(ns.without, Feature, option="--without", noun="feature")
    broken = parse_names(ns.advertise_broken, Feature, option="--advertise-broken", noun="feature")
    if both := without & broken:
        names = ", ".join(sorted(both))
        raise errors.InvalidInput(f"{names}: cannot be both switched off and advertised broken")
    node_id = str(ns.node_id)
    if not _NODE_ID.fullmatch(node_id):
        raise errors.InvalidInput(
            f"--node-id {node_id!r}: must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
            hint="the node id doubles as a CSI topology value, which has these rules",
        )
    driver_name = str(ns.driver_name)
    if not _DRIVER_NAME.fullmatch(driver_name):
        raise errors.InvalidInput(
            f"--driver-name {driver_name!r}: must be 1-63 lower-case letters, digits, '-' or "
            "'.', starting and ending with a letter or digit",
            hint="Kubernetes names the driver's CSIDriver object after it, e.g. local.example.com",
        )
    if ns.pin_volumes and not ns.shared:
        raise errors.InvalidInput(
            "--pin-volumes needs --shared",
            hint="without --shared every volume already lives on this instance's node",
        )
    endpoint = Endpoint.parse(ns.endpoint)
    return DriverConfig(
        endpoint=endpoint,
        state_dir=ns.state_dir.absolute(),
        node_id=node_id,
        shared=bool(ns.shared),
        pinned=bool(ns.pin_volumes),
        without=without,
        broken=broken,
        log_level=str(ns.log_level),
        kubelet=_kubelet_registration(ns, endpoint, name=driver_name),
        driver_name=driver_name,
        faults=parse_names(ns.fault, fault_switches.Fault, option="--fault", noun="fault"),
    )


def _kubelet_registration(
    ns: argparse.Namespace, endpoint: Endpoint, *, name: str
) -> KubeletRegistration | None:
    directory: pathlib.Path | None = ns.kubelet_registration_dir
    csi_endpoint: pathlib.Path | None = ns.kubelet_csi_endpoint
    if directory is None:
        if csi_endpoint is not None:
            raise errors.InvalidInput("--kubelet-csi-endpoint needs --kubelet-registration-dir")
        return None
    if endpoint.socket_path is None:
        raise errors.InvalidInput(
            "--kubelet-registration-dir needs a unix --endpoint",
            hint="the kubelet calls CSI drivers on unix sockets only",
        )
    if csi_endpoint is not None and not csi_endpoint.is_absolute():
        raise errors.InvalidInput(
            f"--kubelet-csi-endpoint {str(csi_endpoint)!r}: must be an absolute path",
            hint="the kubelet dials it as given, from the host's root",
        )
    return KubeletRegistration(
        directory=directory.absolute(),
        csi_endpoint=csi_endpoint or endpoint.socket_path,
        name=name,
    )
