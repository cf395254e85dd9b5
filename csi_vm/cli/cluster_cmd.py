"""`csi-vm capabilities cluster`: one capability row per StorageClass of a cluster."""

from __future__ import annotations

import pathlib
import sys
from typing import TYPE_CHECKING

import typer

from csi_vm import errors
from csi_vm.cli import output, paths, signals

if TYPE_CHECKING:
    from capabilities import probe as probe_mod

# The probe and its CSI client (gRPC) are imported when the command runs.


def cluster(
    kubeconfig: pathlib.Path | None = typer.Option(
        None,
        "--kubeconfig",
        metavar="FILE",
        help="Kubeconfig file to use. Default: $KUBECONFIG, then ~/.kube/config, "
        "then the service account of the pod csi-vm runs in.",
    ),
    context: str | None = typer.Option(
        None,
        "--context",
        metavar="NAME",
        help="Kubeconfig context to use instead of the current one.",
    ),
    probe: list[str] = typer.Option(
        [],
        "--probe",
        "-p",
        metavar="PROVISIONER=ENDPOINT",
        help="PROVISIONER=ENDPOINT: also probe that driver's CSI socket and merge what it "
        "verifies into the rows of its StorageClasses; repeat for several drivers.",
    ),
    declared_only: bool = typer.Option(
        False,
        "--declared-only",
        help="Probes only read what the drivers declare; nothing is created on the storage.",
    ),
    fmt: output.Format = output.format_option(),
    output_file: pathlib.Path | None = output.file_option(),
) -> None:
    """Report what each StorageClass of a Kubernetes cluster offers VM disks.

    Reads the cluster's CSIDriver, StorageClass, VolumeSnapshotClass and
    CSINode objects (list permission on them is all it needs) and prints one
    row per StorageClass, with the strategy csi-vm would use for each VM
    operation. Kubernetes objects declare only part of a driver's features;
    --probe fills in the rest by probing the driver's socket, which without
    --declared-only creates (and removes) tiny test volumes.

    Example:

        csi-vm capabilities cluster --context prod -o html --output-file cluster.html
    """
    # The Kubernetes client takes most of a second to import: only this command needs it.
    from capabilities import cluster as cluster_mod  # noqa: PLC0415
    from capabilities import probe as probe_mod  # noqa: PLC0415 - see the imports
    from csi_vm.kube import api as kube_api  # noqa: PLC0415

    targets = _targets(probe)
    options = probe_mod.Options(declared_only=declared_only, journal_dir=paths.probe_journals())
    with kube_api.connect(kubeconfig_file=kubeconfig, context=context) as api:
        report, interrupted = signals.run_cancellable(
            lambda cancel: cluster_mod.run(api, probes=targets, options=options, cancel=cancel)
        )
    output.emit(report, fmt=fmt, path=output_file)
    if interrupted:
        print("interrupted: everything the probes created has been removed", file=sys.stderr)
        raise typer.Exit(signals.INTERRUPTED)


def _targets(values: list[str]) -> dict[str, probe_mod.Target]:
    """``PROVISIONER=ENDPOINT`` options as probe targets by provisioner name."""
    from capabilities import probe as probe_mod  # noqa: PLC0415 - see the imports

    targets: dict[str, probe_mod.Target] = {}
    for value in values:
        name, sep, endpoint = value.partition("=")
        if not sep or not name or not endpoint:
            raise errors.InvalidInput(
                f"--probe {value!r} is not PROVISIONER=ENDPOINT",
                hint="e.g. --probe ebs.csi.aws.com=unix:///var/lib/kubelet/plugins/ebs.csi.aws.com/csi.sock",
            )
        if name in targets:
            raise errors.InvalidInput(f"--probe names provisioner {name!r} twice")
        targets[name] = probe_mod.Target(label=name, endpoint=endpoint)
    return targets
