"""Probe one CSI driver: what it declares, what really works, and the plan.

`run` never raises for driver trouble: a driver that fails or hangs becomes a
report with its error, so a matrix of many drivers always completes.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import pathlib
import tempfile
import threading
import time

from capabilities import checks, ladder, model, results, session, tracker
from capabilities import declared as declared_mod
from capabilities.checks import context
from csi_vm import errors
from csi_vm.csi import client as csi_client
from csi_vm.csi import models, retry

log = logging.getLogger("csi_vm.probe")

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """One driver to probe: its controller endpoint and node endpoints by node name."""

    label: str
    endpoint: str
    nodes: dict[str, str] = dataclasses.field(default_factory=dict)
    asserted: frozenset[model.Feature] = frozenset()
    timeout: float = 10.0
    modify_parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    secrets: models.Secrets = dataclasses.field(default_factory=models.Secrets)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    declared_only: bool = False
    size: int = MIB
    budget: float = 120.0
    ready_timeout: float = 10.0
    journal_dir: pathlib.Path
    work_dir: pathlib.Path | None = None


def run(
    target: Target, options: Options, *, cancel: threading.Event | None = None
) -> model.DriverReport:
    started = time.monotonic()
    # One retry only: a probe reports what the driver does now, and a matrix
    # must not wait on a dead driver for long.
    policy = retry.RetryPolicy(attempts=2, first_delay=0.1)
    controller = csi_client.Client(
        target.endpoint, timeout=target.timeout, policy=policy, secrets=target.secrets
    )
    nodes = {
        name: csi_client.Client(ep, timeout=target.timeout, policy=policy, secrets=target.secrets)
        for name, ep in target.nodes.items()
    }
    try:
        report = _probe(target, options, controller, nodes, cancel or threading.Event())
    except errors.CsiVmError as err:
        report = _failed(target, options, str(err))
    finally:
        controller.close()
        for node in nodes.values():
            node.close()
    finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return report.model_copy(
        update={"seconds": round(time.monotonic() - started, 3), "generated_at": finished}
    )


def _probe(
    target: Target,
    options: Options,
    controller: csi_client.Client,
    nodes: dict[str, csi_client.Client],
    cancel: threading.Event,
) -> model.DriverReport:
    if not nodes:
        nodes = _controller_as_node(controller)
    declared = declared_mod.read(controller, nodes)
    outcomes: dict[model.Feature, results.Outcome] = {}
    leftovers: list[str] = []
    if not options.declared_only:
        outcomes, leftovers = _verify(
            target=target,
            options=options,
            controller=controller,
            nodes=nodes,
            declared=declared,
            cancel=cancel,
        )
    features = _merge(declared.features(), outcomes, declared_only=options.declared_only)
    info = model.DriverInfo(
        label=target.label,
        endpoint=target.endpoint,
        name=declared.info.name,
        vendor_version=declared.info.vendor_version,
        node_endpoints={name: client.endpoint for name, client in nodes.items()},
    )
    return model.DriverReport(
        driver=info,
        mode="declared-only" if options.declared_only else "verified",
        features=features,
        declared=declared.raw(),
        plan=ladder.plan(features, trust_declared=options.declared_only, asserted=target.asserted),
        warnings=_warnings(features) + [f"left behind: {item}" for item in leftovers],
    )


def _controller_as_node(controller: csi_client.Client) -> dict[str, csi_client.Client]:
    """Most drivers serve Node on the same socket; use it when no node endpoint is given."""
    try:
        info = controller.node_info()
    except errors.CsiVmError:
        return {}
    return {info.node_id or "node": controller}


def _verify(
    *,
    target: Target,
    options: Options,
    controller: csi_client.Client,
    nodes: dict[str, csi_client.Client],
    declared: declared_mod.Declared,
    cancel: threading.Event,
) -> tuple[dict[model.Feature, results.Outcome], list[str]]:
    journal = tracker.Journal(options.journal_dir, endpoint=target.endpoint)
    work_dir = options.work_dir or pathlib.Path(tempfile.mkdtemp(prefix="csi-vm-probe-"))
    sess = session.Session(controller=controller, nodes=nodes, journal=journal, work_dir=work_dir)
    found = results.Results(budget=options.budget, cancel=cancel)
    ctx = context.Context(
        session=sess,
        declared=declared,
        results=found,
        size=options.size,
        nodes=tuple(nodes),
        node_reason=_node_reason(nodes),
        ready_timeout=options.ready_timeout,
        modify_parameters=dict(target.modify_parameters),
    )
    try:
        checks.run(ctx)
    except results.Interrupted as err:
        _mark_unattempted(found, str(err))
    finally:
        sess.cleanup()
    return found.outcomes, sess.leftovers


def _node_reason(nodes: dict[str, csi_client.Client]) -> str:
    if not nodes:
        return "no node endpoint (give --node-endpoint NODE=EP)"
    if os.geteuid() != 0:
        return "node checks need root (they stage and mount volumes)"
    return ""


def _mark_unattempted(found: results.Results, reason: str) -> None:
    for feature in model.Feature:
        if feature not in found.outcomes:
            found.set(feature, None, f"not attempted: {reason}")


def _merge(
    declared: dict[model.Feature, bool | None],
    outcomes: dict[model.Feature, results.Outcome],
    *,
    declared_only: bool,
) -> dict[model.Feature, model.FeatureResult]:
    merged: dict[model.Feature, model.FeatureResult] = {}
    for feature in model.Feature:
        outcome = outcomes.get(feature, results.Outcome())
        evidence = outcome.evidence
        if declared_only:
            evidence = "declared only: nothing was created"
        elif not evidence:
            evidence = "not attempted"
        merged[feature] = model.FeatureResult(
            declared=declared.get(feature),
            verified=outcome.verified,
            inferred=outcome.inferred,
            evidence=evidence,
            seconds=round(outcome.seconds, 4),
        )
    return merged


def _warnings(features: dict[model.Feature, model.FeatureResult]) -> list[str]:
    warnings = []
    for feature, result in features.items():
        if result.declared is True and result.verified is False:
            warnings.append(f"{feature}: declared but failed: {result.evidence}")
        elif result.undeclared:
            warnings.append(
                f"{feature}: works, undeclared: the driver answers it but does not declare it; "
                f"plans use it only where the config asserts it (assert: [{feature}])"
            )
    return warnings


def _failed(target: Target, options: Options, message: str) -> model.DriverReport:
    features = {f: model.FeatureResult(evidence=f"not attempted: {message}") for f in model.Feature}
    return model.DriverReport(
        driver=model.DriverInfo(
            label=target.label, endpoint=target.endpoint, node_endpoints=dict(target.nodes)
        ),
        mode="declared-only" if options.declared_only else "verified",
        features=features,
        plan={},
        error=message,
    )
