"""`csi-vm controller run`: the Kubernetes controller, as the chart's Deployment runs it."""

from __future__ import annotations

import logging
import os
import pathlib
import socket
from typing import TYPE_CHECKING

import typer

from csi_vm import errors
from csi_vm.cli import signals

if TYPE_CHECKING:
    from csi_vm.controller import launchpod

# The controller, the Kubernetes client and prometheus are imported when it
# runs: --help needs none of them.

app = typer.Typer(help="The Kubernetes controller (installed by the csi-vm Helm chart).")

# The chart passes these through the Downward API and its values.
_POD_NAMESPACE = "POD_NAMESPACE"
_DEFAULT_IMAGE = "ghcr.io/csi-vm/csi-vm:0.1.0"


@app.command("run")
def run_cmd(
    kubeconfig: pathlib.Path | None = typer.Option(
        None,
        "--kubeconfig",
        help="Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or the pod's service account.",
    ),
    namespace: str = typer.Option(
        "", "--namespace", help="Watch only this namespace; default: every namespace."
    ),
    lease_namespace: str = typer.Option(
        "",
        "--lease-namespace",
        help="Namespace of the leader-election Lease and of verification volumes; "
        "default: $POD_NAMESPACE, then 'default'.",
    ),
    lease_name: str = typer.Option("csi-vm-controller", "--lease-name"),
    image: str = typer.Option(
        _DEFAULT_IMAGE, "--image", envvar="CSI_VM_IMAGE", help="Image of host-copy Jobs."
    ),
    metrics_port: int = typer.Option(
        9090, "--metrics-port", min=0, max=65535, help="0 disables /metrics."
    ),
    resync: int = typer.Option(30, "--resync", min=1, help="Seconds between full re-lists."),
    image_pull_secret: list[str] = typer.Option(
        [],
        "--image-pull-secret",
        help="A Secret every Pod and Job the controller makes pulls its image with (repeat "
        "for more); it must exist in each VM's namespace.",
    ),
    launcher_image: str = typer.Option(
        "",
        "--launcher-image",
        help="Run each running VM in a launcher Pod of this image (libvirtd and qemu); "
        "default: no launcher Pods, guests run in the node DaemonSet's libvirt.",
    ),
    launcher_overhead: str = typer.Option(
        "256Mi", "--launcher-overhead", help="Memory a launcher Pod asks for on top of the VM's."
    ),
    launcher_vcpu_millis: int = typer.Option(
        1000,
        "--launcher-vcpu-millis",
        min=1,
        help="CPU a launcher Pod asks for per vCPU (1000: one).",
    ),
    launcher_stop_grace: int = typer.Option(
        30, "--launcher-stop-grace", min=0, help="Seconds a guest gets to power off when stopped."
    ),
    launcher_acceleration: str = typer.Option(
        "auto",
        "--launcher-acceleration",
        help="auto (KVM where a test guest runs under it, else TCG), kvm or tcg.",
    ),
    launcher_tls: bool = typer.Option(
        False,
        "--launcher-tls",
        help="Launcher Pods' libvirtd listens with TLS for migrations (certificates from "
        "the node agents' --migration-ca-dir).",
    ),
) -> None:
    """Lead through a Lease, then reconcile csi-vm's custom resources until stopped.

    Example (the chart's Deployment runs it so):

        csi-vm controller run --lease-namespace csi-vm --metrics-port 9090
    """
    import prometheus_client as prom  # noqa: PLC0415 - see the imports

    from csi_vm.controller import context, leader, metrics, pullsecrets  # noqa: PLC0415
    from csi_vm.controller import run as controller_run  # noqa: PLC0415 - see the imports
    from csi_vm.crd import events  # noqa: PLC0415 - see the imports
    from csi_vm.kube import api as kube_api  # noqa: PLC0415 - see the imports

    launcher = _launcher(
        launcher_image, overhead=launcher_overhead, vcpu_millis=launcher_vcpu_millis,
        stop_grace_s=launcher_stop_grace, acceleration=launcher_acceleration, tls=launcher_tls,
    )  # fmt: skip
    # Retries log at INFO (a command shows them with -v); a service shows them.
    logging.getLogger("csi_vm.retry").setLevel(logging.INFO)
    api = kube_api.connect(kubeconfig_file=kubeconfig)
    objs = pullsecrets.Objects(api, secrets=image_pull_secret)
    meters = metrics.Metrics()
    if metrics_port:
        prom.start_http_server(metrics_port, registry=meters.registry)
    own_namespace = lease_namespace or os.environ.get(_POD_NAMESPACE) or "default"
    ctx = context.Context(
        api=api,
        objs=objs,
        events=events.Recorder(objs),
        metrics=meters,
        image=image,
        probe_namespace=own_namespace,
        launcher=launcher,
    )
    elector = leader.Elector(
        objs=objs,
        namespace=own_namespace,
        name=lease_name,
        identity=os.environ.get("POD_NAME") or socket.gethostname(),
    )
    controller = controller_run.Controller(ctx=ctx, namespace=namespace, resync=resync)
    try:
        # SIGTERM (the kubelet stopping the pod) and SIGINT set the loop's
        # stop event: it winds down and hands the Lease back before we exit.
        signals.run_cancellable(lambda stop: controller_run.run(controller, elector, stop))
    finally:
        api.close()


_ACCELERATIONS = ("auto", "kvm", "tcg")


def _launcher(
    image: str,
    *,
    overhead: str,
    vcpu_millis: int,
    stop_grace_s: int,
    acceleration: str,
    tls: bool = False,
) -> launchpod.Settings | None:
    """The launcher Pods' settings; None without --launcher-image (no launcher Pods)."""
    from csi_vm.controller import launchpod  # noqa: PLC0415 - see the imports
    from csi_vm.kube import quantity  # noqa: PLC0415 - see the imports

    if acceleration not in _ACCELERATIONS:
        raise errors.InvalidInput(
            f"--launcher-acceleration {acceleration!r}: expected one of {', '.join(_ACCELERATIONS)}"
        )
    try:
        quantity.to_bytes(overhead)
    except errors.InvalidInput as err:
        raise errors.InvalidInput(f"--launcher-overhead: {err.message}") from err
    if not image:
        return None
    return launchpod.Settings(
        image=image, overhead=overhead, vcpu_millis=vcpu_millis, stop_grace_s=stop_grace_s,
        acceleration=acceleration, tls=tls,
    )  # fmt: skip
