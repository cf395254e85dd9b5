"""`csi-vm capabilities ...`: probe drivers and print capability reports."""

from __future__ import annotations

import enum
import json
import pathlib
import sys
from typing import TYPE_CHECKING

import typer

from capabilities import features
from csi_vm import errors
from csi_vm.cli import cluster_cmd, output, paths, signals

if TYPE_CHECKING:
    from capabilities import cleanup, probe

# The probe, its CSI client (gRPC), the catalogue, the config and yaml are
# imported by the commands that use them: --help needs none of them.

app = typer.Typer(
    help=(
        "Find out what a CSI driver declares and what really works, and which strategy "
        "csi-vm will use for each VM operation."
    ),
    no_args_is_help=True,
)


@app.command("probe")
def probe_cmd(
    endpoint: str = typer.Option(
        ...,
        "--endpoint",
        "-e",
        help="Controller endpoint: unix:///path, a socket path or tcp://host:port.",
    ),
    node_endpoint: list[str] = typer.Option(
        [],
        "--node-endpoint",
        "-n",
        help="NODE=ENDPOINT of a node service; repeat for several nodes. "
        "Two nodes let the probe verify cross-node sharing.",
    ),
    declared_only: bool = typer.Option(
        False,
        "--declared-only",
        help="Only read what the driver declares; creates nothing, safe on production storage.",
    ),
    assert_feature: list[str] = typer.Option(
        [],
        "--assert",
        help="Treat a feature as present without testing it "
        "(e.g. multi_node_shared for storage you know is shared); repeat for several. "
        "Features: " + ", ".join(f.value for f in features.Feature) + ".",
    ),
    timeout: float = typer.Option(
        10.0, "--timeout", min=0.1, help="Deadline of each CSI call, in seconds."
    ),
    fmt: output.Format = output.format_option(),
    output_file: pathlib.Path | None = output.file_option(),
) -> None:
    """Probe one driver.

    Without --declared-only, the probe creates tiny volumes (1 MiB) named
    csi-vm-probe-*, stages and publishes them on the node endpoints (needs root),
    and always removes them, also on SIGINT/SIGTERM. After a kill -9 run
    `csi-vm capabilities cleanup`. Exit code 4 when the driver could not be
    probed (the report still says why).

    Example:

        csi-vm capabilities probe -e unix:///run/csi/csi.sock -o html --output-file report.html
    """
    from capabilities import probe  # noqa: PLC0415 - see the imports

    target = probe.Target(
        label=endpoint,
        endpoint=endpoint,
        nodes=_node_endpoints(node_endpoint),
        asserted=_features(assert_feature, where="--assert"),
        timeout=timeout,
    )
    options = probe.Options(declared_only=declared_only, journal_dir=paths.probe_journals())
    report, interrupted = signals.run_cancellable(
        lambda cancel: probe.run(target, options, cancel=cancel)
    )
    if report.error is not None and not interrupted and _for_people(fmt, output_file):
        # Nothing could be probed: a table of "not attempted" rows would
        # repeat this one error in every row.
        raise errors.Unreachable(
            f"cannot probe {endpoint}: {report.error}",
            hint="start the driver or correct --endpoint; -o json gives the report anyway",
        )
    output.emit(report, fmt=fmt, path=output_file)
    _finish(interrupted=interrupted, failed=report.error is not None)


def _for_people(fmt: output.Format, path: pathlib.Path | None) -> bool:
    return fmt is output.Format.TABLE and path is None


@app.command("matrix")
def matrix_cmd(
    endpoint: list[str] = typer.Option(
        [], "--endpoint", "-e", help="NAME=ENDPOINT of a driver; repeat for several."
    ),
    config_file: pathlib.Path | None = typer.Option(
        None, "--config", "-c", help="A csi-vm config file naming the drivers (see examples/)."
    ),
    declared_only: bool = typer.Option(
        False, "--declared-only", help="Only read declarations; creates nothing."
    ),
    budget: float = typer.Option(
        120.0, "--budget", min=1.0, help="Time limit of each driver's probe, in seconds."
    ),
    fmt: output.Format = output.format_option(),
    output_file: pathlib.Path | None = output.file_option(),
) -> None:
    """Probe many drivers in parallel; a driver that fails or hangs becomes a row with its error.

    Example:

        csi-vm capabilities matrix --config examples/config.yaml -o markdown

    The report is written in full either way; the exit code is 4 when any
    driver could not be probed, so scripts notice a driver that is down.
    """
    from capabilities import matrix, probe  # noqa: PLC0415 - see the imports

    targets = _targets(endpoint, config_file)
    options = probe.Options(
        declared_only=declared_only, journal_dir=paths.probe_journals(), budget=budget
    )
    report, interrupted = signals.run_cancellable(
        lambda cancel: matrix.run(targets, options, cancel=cancel)
    )
    output.emit(report, fmt=fmt, path=output_file)
    _finish(interrupted=interrupted, failed=any(row.error for row in report.rows))


@app.command("catalogue")
def catalogue_cmd(
    file: pathlib.Path = typer.Argument(
        ..., help="The public CSI driver list (markdown, as in the kubernetes-csi docs)."
    ),
    fmt: output.Format = output.format_option(),
    output_file: pathlib.Path | None = output.file_option(),
) -> None:
    """Read the public driver list into the report schema, with ecosystem totals.

    Example:

        csi-vm capabilities catalogue drivers.md -o json --output-file catalogue.json
    """
    from capabilities import catalogue as catalogue_mod  # noqa: PLC0415 - see the imports

    output.emit(catalogue_mod.report_from_file(file), fmt=fmt, path=output_file)


app.command("cluster")(cluster_cmd.cluster)


class Listing(enum.StrEnum):
    """-o of cleanup: lines for people, the lists for scripts."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


@app.command("cleanup")
def cleanup_cmd(
    endpoint: str = typer.Option(
        ..., "--endpoint", "-e", help="The controller endpoint a probe ran against."
    ),
    fmt: Listing = typer.Option(
        Listing.TABLE,
        "--output",
        "-o",
        help="table (a line per object, the default), or json or yaml of what was removed.",
    ),
) -> None:
    """Remove what an interrupted or killed probe left on a driver.

    Example:

        csi-vm capabilities cleanup -e unix:///run/csi/csi.sock
    """
    import yaml  # noqa: PLC0415 - see the imports

    from capabilities import cleanup  # noqa: PLC0415 - see the imports

    result = cleanup.run(endpoint, journal_dir=paths.probe_journals())
    if fmt is not Listing.TABLE:
        done = {"removed": result.removed, "failed": result.failed, "journals": result.journals}
        typer.echo(json.dumps(done, indent=2) if fmt is Listing.JSON else yaml.safe_dump(done))
    else:
        _say_cleaned(result)
    if result.failed:
        raise typer.Exit(5)


def _say_cleaned(result: cleanup.Outcome) -> None:
    for line in result.removed:
        typer.echo(f"removed {line}")
    for line in result.failed:
        typer.echo(f"could not remove {line}", err=True)
    typer.echo(
        f"{len(result.removed)} removed, {len(result.failed)} failed "
        f"({result.journals} probe journals)"
    )


def _finish(*, interrupted: bool, failed: bool) -> None:
    if interrupted:
        print("interrupted: everything the probe created has been removed", file=sys.stderr)
        raise typer.Exit(signals.INTERRUPTED)
    if failed:
        raise typer.Exit(4)


def _node_endpoints(values: list[str]) -> dict[str, str]:
    nodes: dict[str, str] = {}
    for value in values:
        name, sep, ep = value.partition("=")
        if not sep or not name or not ep:
            raise errors.InvalidInput(
                f"--node-endpoint {value!r} is not NODE=ENDPOINT",
                hint="e.g. --node-endpoint node-a=unix:///run/csi/node-a.sock",
            )
        if name in nodes:
            raise errors.InvalidInput(f"--node-endpoint names node {name!r} twice")
        nodes[name] = ep
    return nodes


def _features(values: list[str] | tuple[str, ...], *, where: str) -> frozenset[features.Feature]:
    known = {f.value for f in features.Feature}
    for value in values:
        if value not in known:
            raise errors.InvalidInput(
                f"{where}: unknown feature {value!r}", hint="one of " + ", ".join(sorted(known))
            )
    return frozenset(features.Feature(v) for v in values)


def _targets(endpoints: list[str], config_file: pathlib.Path | None) -> list[probe.Target]:
    from capabilities import probe  # noqa: PLC0415 - see the imports
    from csi_vm import config  # noqa: PLC0415 - see the imports
    from csi_vm.csi import models as csi_models  # noqa: PLC0415 - see the imports

    targets: list[probe.Target] = []
    if config_file is not None:
        cfg = config.load(config_file)
        for name, drv in cfg.drivers.items():
            targets.append(
                probe.Target(
                    label=name,
                    endpoint=drv.endpoint,
                    nodes=dict(drv.nodes),
                    asserted=_features(drv.asserted, where=f"{config_file}: drivers.{name}.assert"),
                    timeout=drv.timeout,
                    secrets=csi_models.Secrets(drv.secret_values()),
                    modify_parameters=dict(drv.modify_parameters),
                )
            )
    for label, ep in _node_endpoints(endpoints).items():
        targets.append(probe.Target(label=label, endpoint=ep))
    if not targets:
        raise errors.InvalidInput(
            "no drivers to probe", hint="give --endpoint NAME=EP or --config FILE"
        )
    labels = [t.label for t in targets]
    if len(set(labels)) != len(labels):
        raise errors.InvalidInput(
            "a driver name is given twice (in --endpoint and the config file?)"
        )
    return targets
