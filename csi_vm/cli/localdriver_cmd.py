"""`csi-vm localdriver`: run the local reference CSI driver in the foreground."""

from __future__ import annotations

import typer

from csi_vm.localdriver import server  # gRPC and the state load when it serves, not for --help


def localdriver(ctx: typer.Context) -> None:
    """Run the local reference CSI driver (sparse files, loop devices; needs root).

    Example: csi-vm localdriver --endpoint unix:///run/csi-vm/local.sock
    --state-dir /var/lib/csi-vm/local --node-id node-a [--without snapshot,clone]

    On a Kubernetes node it registers with the kubelet itself: add
    --kubelet-registration-dir /var/lib/kubelet/plugins_registry.

    Every option is the driver's own: see `csi-vm localdriver --help`.
    """
    raise typer.Exit(server.main(list(ctx.args)))
