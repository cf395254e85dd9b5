"""`csi-vm controller run`: the Kubernetes controller, as the chart's Deployment runs it."""

from __future__ import annotations

import logging
import os
import pathlib
import socket

import typer

from csi_vm.cli import signals

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
) -> None:
    """Lead through a Lease, then reconcile csi-vm's custom resources until stopped.

    Example (the chart's Deployment runs it so):

        csi-vm controller run --lease-namespace csi-vm --metrics-port 9090
    """
    import prometheus_client as prom  # noqa: PLC0415 - see the imports

    from csi_vm.controller import context, leader, metrics  # noqa: PLC0415 - see the imports
    from csi_vm.controller import run as controller_run  # noqa: PLC0415 - see the imports
    from csi_vm.crd import events  # noqa: PLC0415 - see the imports
    from csi_vm.kube import api as kube_api  # noqa: PLC0415 - see the imports
    from csi_vm.kube import objects  # noqa: PLC0415 - see the imports

    # Retries log at INFO (a command shows them with -v); a service shows them.
    logging.getLogger("csi_vm.retry").setLevel(logging.INFO)
    api = kube_api.connect(kubeconfig_file=kubeconfig)
    objs = objects.Objects(api)
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
