"""`csi-vm node-agent run`: the node agent, as the chart's DaemonSet runs it on every node."""

from __future__ import annotations

import logging
import pathlib
import threading

import typer

from csi_vm import errors
from launcher import domain, libvirt_conn

# The agent's loop, the Kubernetes client and the recorder are imported when
# it runs: --help needs none of them.

app = typer.Typer(
    help="The node agent (the csi-vm Helm chart's DaemonSet): runs the guests of its node.",
    no_args_is_help=True,
)

_HELP = """Start, stop and migrate the VMs of one node until stopped.

The controller (`csi-vm controller run`) makes each CsiVM's claims
and a holder Pod on the VM's node, so the kubelet publishes the volumes
there. This agent watches CsiVMs and CsiVMMigrations and acts on its
own node only:

- a VM whose status.nodeName (or, while it runs nowhere, spec.nodeName) is
  this node, with spec.running true and every disk published, is defined
  and started in libvirt; spec.running false stops it. status.phase,
  status.nodeName and the Running condition say what happened, Events why.

- a CsiVMMigration the controller scheduled from this node is run as a libvirt
  live migration to the target node's libvirt (--peer-uri, or
  --peer-uri-template): memory only on a shared volume (shared-volume), with
  a copy of every disk into the target's new claims (storage-migration);
  afterwards the guest runs on exactly one node and the migration is
  Succeeded or Failed with the reason.

Disks are found under the kubelet's directory (--kubelet-dir): a block
volume at pods/UID/volumeDevices/kubernetes.io~csi/PV, a filesystem volume
at pods/UID/volumes/kubernetes.io~csi/PV/mount/disk.img, where UID is the
holder Pod's.

Example, on node n1, with node n2's libvirt reached over TCP:

    csi-vm node-agent run --node n1 --peer-uri-template 'qemu+tcp://{node}/system'
"""


def _peers(entries: list[str]) -> dict[str, str]:
    peers = {}
    for entry in entries:
        node, sep, uri = entry.partition("=")
        if not sep or not node or not uri:
            raise errors.InvalidInput(f"--peer-uri {entry!r}: expected NODE=URI")
        peers[node] = uri
    return peers


def _boot(
    kernel: pathlib.Path | None, initrd: pathlib.Path | None, cmdline: str
) -> domain.DirectBoot | None:
    if kernel is None:
        return None
    if initrd is None:
        raise errors.InvalidInput("--kernel needs --initrd")
    return domain.DirectBoot(kernel=kernel.resolve(), initramfs=initrd.resolve(), cmdline=cmdline)


@app.command("run", help=_HELP)
def run_cmd(
    node: str = typer.Option(
        ..., "--node", envvar="NODE_NAME", help="This node's name, as Kubernetes knows it."
    ),
    kubeconfig: pathlib.Path | None = typer.Option(
        None,
        "--kubeconfig",
        help="Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the pod's service account.",
    ),
    libvirt_uri: str = typer.Option(
        libvirt_conn.SYSTEM_URI,
        "--libvirt-uri",
        envvar="LIBVIRT_DEFAULT_URI",
        help="This node's libvirt.",
    ),
    kubelet_dir: pathlib.Path = typer.Option(
        pathlib.Path("/var/lib/kubelet"),
        "--kubelet-dir",
        help="The kubelet's root directory (where pods/ is), as this process sees it.",
    ),
    peer_uri_template: str = typer.Option(
        "qemu+tcp://{node}/system",
        "--peer-uri-template",
        help="Another node's libvirt URI for migrations; {node} is replaced by its name.",
    ),
    peer_uri: list[str] = typer.Option(
        [],
        "--peer-uri",
        help="NODE=URI: a node's libvirt URI, instead of the template (repeatable).",
    ),
    state_dir: pathlib.Path = typer.Option(
        pathlib.Path("/var/lib/csi-vm"),
        "--state-dir",
        envvar="CSI_VM_STATE_DIR",
        help="Console logs of the guests; use the same path on every node.",
    ),
    namespace: str = typer.Option(
        "", "--namespace", help="Watch only this namespace; default: every namespace."
    ),
    resync: int = typer.Option(30, "--resync", min=1, help="Seconds between full re-lists."),
    stop_grace: float = typer.Option(
        30.0, "--stop-grace", min=0, help="Seconds a guest gets to power off before it is killed."
    ),
    kernel: pathlib.Path | None = typer.Option(
        None, "--kernel", help="Boot every guest of this node with this kernel (tests, demos)."
    ),
    initrd: pathlib.Path | None = typer.Option(None, "--initrd", help="Its initramfs."),
    cmdline: str = typer.Option("", "--cmdline", help="Its kernel command line."),
    launcher_dir: pathlib.Path | None = typer.Option(
        None,
        "--launcher-dir",
        help="Guests run in launcher Pods, whose run directories are under this directory "
        "of the node (the controller's --launcher-image); default: in --libvirt-uri.",
    ),
    migration_ca_dir: pathlib.Path | None = typer.Option(
        None,
        "--migration-ca-dir",
        help="The migration CA (tls.crt, tls.key): each launcher Pod gets a TLS certificate "
        "from it, and migrations between them use TLS (the controller's --launcher-tls).",
    ),
) -> None:
    from csi_vm.agent import run as agent_run  # noqa: PLC0415 - see the imports
    from csi_vm.agent import state  # noqa: PLC0415 - see the imports
    from csi_vm.crd import events  # noqa: PLC0415 - see the imports
    from csi_vm.kube import api as kube_api  # noqa: PLC0415 - see the imports
    from csi_vm.kube import objects  # noqa: PLC0415 - see the imports

    for logger in ("csi_vm.agent", "csi_vm.retry"):  # a service logs its retries
        logging.getLogger(logger).setLevel(logging.INFO)
    boot = _boot(kernel, initrd, cmdline)
    peers = state.peer_uris(_peers(peer_uri), peer_uri_template)
    state_dir.mkdir(parents=True, exist_ok=True)
    api = kube_api.connect(kubeconfig_file=kubeconfig)
    objs = objects.Objects(api)
    conn = libvirt_conn.Connection.open(libvirt_uri)
    agent = state.Agent(
        node=node,
        objs=objs,
        events=events.Recorder(objs, component=state.COMPONENT),
        conn=conn,
        kubelet_dir=kubelet_dir,
        state_dir=state_dir,
        peer_uri=peers,
        boot=boot,
        stop_grace_s=stop_grace,
        launcher_dir=launcher_dir,
        ca_dir=migration_ca_dir,
    )
    stop = threading.Event()
    try:
        agent_run.Loop(agent=agent, namespace=namespace, resync=resync).run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        conn.close()
        api.close()
