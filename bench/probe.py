"""Benchmark the capability probe against the local reference driver.

Prints, for the same machine and run:
  - the median of a full verified probe and of a declared-only probe, each as a
    ratio against the baseline "one GetPluginInfo round trip" and against the
    targets (2 s verified, 100 ms declared-only); the verified probe includes
    the effect checks (the node's view of an offline expansion, device sizes
    against answered sizes, a snapshot judged by its restore), whose share of
    it is printed too;
  - a matrix of 8 local drivers probed in parallel, as a ratio against the
    slowest of the same 8 probes run one at a time (target <= 1.5).

Needs root (the verified probe stages and mounts volumes). Usage:
    .venv/bin/python bench/probe.py [--runs 5] [--drivers 8]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import statistics
import sys
import tempfile
import time

# Run as a script, Python puts bench/ first on the path, where copy.py would
# shadow the standard library's copy module: put the repository there instead.
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

from capabilities import matrix, model, probe
from csi_vm.csi import client as csi_client
from tests.support import driverproc


def _timed(func: object) -> float:
    assert callable(func)
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def _options(base: pathlib.Path, *, declared_only: bool = False) -> probe.Options:
    return probe.Options(
        declared_only=declared_only, journal_dir=base / "journals", work_dir=base / "node"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--drivers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-probe-") as tmp:
        base = pathlib.Path(tmp)
        drivers = [
            # The drivers log as a user runs them, not at the tests' DEBUG level.
            driverproc.start_driver(
                base / f"d{i}", node_id=f"node-{i}", extra_args=("--log-level", "WARNING")
            )
            for i in range(args.drivers)
        ]
        try:
            _run(base, drivers, args.runs)
        finally:
            for drv in drivers:
                drv.stop()


def _run(base: pathlib.Path, drivers: list[driverproc.DriverProcess], runs: int) -> None:
    first = drivers[0]
    with csi_client.Client(first.endpoint) as c:
        c.plugin_info()
        rtt = statistics.median(_timed(c.plugin_info) for _ in range(50))
    target = probe.Target(label="local", endpoint=first.endpoint)
    reports: list[model.DriverReport] = []
    verified = [
        _timed(lambda: reports.append(_check(probe.run(target, _options(base)))))
        for _ in range(runs)
    ]
    declared = [
        _timed(lambda: _check(probe.run(target, _options(base, declared_only=True))))
        for _ in range(runs)
    ]
    med_v, med_d = statistics.median(verified), statistics.median(declared)
    print(f"baseline: GetPluginInfo round trip        {rtt * 1000:8.2f} ms")
    print(
        f"verified probe, median of {runs}           {med_v * 1000:8.1f} ms  "
        f"= {med_v / rtt:7.0f}x baseline, {med_v / 2.0:.2f}x the 2 s target"
    )
    print(
        f"declared-only probe, median of {runs}      {med_d * 1000:8.1f} ms  "
        f"= {med_d / rtt:7.1f}x baseline, {med_d / 0.1:.2f}x the 100 ms target"
    )
    # The offline expansion check now publishes the grown volume to measure it.
    effect = statistics.median(
        r.features[model.Feature.EXPANSION_CONTROLLER].seconds for r in reports
    )
    print(
        f"  of which offline expansion + node check {effect * 1000:8.1f} ms  "
        f"= {effect / med_v:.0%} of the verified probe"
    )

    targets = [probe.Target(label=f"d{i}", endpoint=d.endpoint) for i, d in enumerate(drivers)]
    cpu_before = _cpu_seconds(drivers)
    singles = [_timed(lambda t=t: _check(probe.run(t, _options(base)))) for t in targets]
    cpu_per_probe = (_cpu_seconds(drivers) - cpu_before) / len(targets)
    slowest = max(singles)
    report = None

    def run_matrix() -> None:
        nonlocal report
        report = matrix.run(targets, _options(base))

    took = _timed(run_matrix)
    assert report is not None and all(r.error is None for r in report.rows)
    print(f"baseline: slowest single probe of {len(targets)}     {slowest * 1000:8.1f} ms")
    print(
        f"matrix of {len(targets)} drivers in parallel      {took * 1000:8.1f} ms  "
        f"= {took / slowest:.2f}x baseline (target <= 1.5)"
    )
    # The probes are CPU work (gRPC on both sides, losetup, mkfs, mount): no
    # schedule finishes N of them faster than their CPU time over the cores.
    cores = os.cpu_count() or 1
    floor = len(targets) * cpu_per_probe / cores
    print(
        f"CPU per probe (csi-vm + driver + tools)   {cpu_per_probe * 1000:8.1f} ms on {cores} cores"
    )
    print(
        f"floor for {len(targets)} probes at once            {floor * 1000:8.1f} ms  "
        f"= {floor / slowest:.2f}x baseline; the matrix took {took / floor:.2f}x that floor"
    )
    # The cores at which the CPU floor itself would be 1.5x the single probe.
    needed = len(targets) * cpu_per_probe / (1.5 * slowest)
    print(
        f"a single probe is {cpu_per_probe / slowest:.0%} CPU-bound: 1.5x needs >= "
        f"{needed:.1f} cores for {len(targets)} probes ({cores} here)"
    )


def _cpu_seconds(drivers: list[driverproc.DriverProcess]) -> float:
    """CPU time of this process, the driver processes and the tools they ran."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    total += sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])
    for drv in drivers:
        with open(f"/proc/{drv.pid}/stat", encoding="ascii") as stream:
            fields = stream.read().rsplit(") ", 1)[1].split()
        # utime, stime, cutime, cstime are fields 14-17 of proc(5)
        total += sum(int(f) for f in fields[11:15]) / ticks
    return total


def _check(report: model.DriverReport) -> model.DriverReport:
    if report.error:
        raise SystemExit(f"probe failed: {report.error}")
    return report


if __name__ == "__main__":
    main()
