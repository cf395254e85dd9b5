"""Fleets of 1,000, 10,000 and 100,000 VMs of 2 disks: list, show, snapshots, memory.

For each fleet size N, in a store of its own:
  - N VMs: SAMPLE of them made by `vms.create` on the local driver (real
    volumes, concurrency C), the rest written with SQL in one transaction
    (tests/support/fleet.py: what `vm create` leaves in the store, without
    hours of CSI calls). Not timed.
  - `csi-vm vm list` run as a real process into a pipe: time to its first
    line and to its last, and its peak RSS (targets: < 100 ms, < 5 s,
    < 300 MB). Baseline "python+sqlite3": a Python process that opens the
    store with the sqlite3 module and prints every VM's name and spec, the
    floor of any Python command reading the store. Peak RSS as GNU time
    (/usr/bin/time) reports it.
  - `csi-vm vm show` of one VM, as a real process (target < 50 ms). Baseline:
    the same Python process printing that one VM's row. Beside it, the same
    line run by the full click CLI (csi_vm.cli.main), which the console
    script's fast path (csi_vm/cli/fastpath.py) spares it; and whether that
    fast path answered (the process imported no click). Each also with its
    CPU time, which other work on a busy machine does not lengthen.
  - VM snapshots per second of the SAMPLE VMs at concurrency C: the journaled
    flow (`snapshots.create`) against one CreateVolumeGroupSnapshot per VM
    made directly over the driver's socket (baseline "direct CSI").
Then how each figure grows from one size to the next. A whole list prints
N lines, so its time grows with N: its cost per 1,000 VMs after the first
line (start-up left out) is the figure that must stay flat. Timings are medians of a few runs; nothing is asserted.

Every process runs as on a host where csi-vm is installed and has run
before: one untimed run of each command first, with Python's bytecode
cached (pip compiles it at install; a tree run under PYTHONDONTWRITEBYTECODE
would compile each changed module again on every run) in a cache of the
bench's own (PYTHONPYCACHEPREFIX), and a config written before, which that
first run checks as any earlier `vm list` or `vm show` has checked it.

Needs root. Usage: .venv/bin/python bench/scale.py [--sizes 1000,10000,100000]
    [--sample 500] [--concurrency 16] [--runs 3]
"""

from __future__ import annotations

import pathlib
import sys

# Run as a script, Python puts bench/ first on the path, where copy.py would
# shadow the standard library's copy module (dataclasses imports it): put the
# repository there instead, before anything else is imported.
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

import argparse
import concurrent.futures
import dataclasses
import itertools
import os
import resource
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

import yaml

from csi_vm import config, spec
from csi_vm.csi import client as csi_client
from csi_vm.flows import context, snapshots, vms
from csi_vm.store import db, records
from tests.support import driverproc, fleet

MIB = 1024 * 1024
#: GNU time (the time package), for a child's own peak RSS
_GNU_TIME = "/usr/bin/time"

#: the baseline process: Python and its sqlite3 module, nothing of csi-vm
_BASELINE_LIST = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
for name, spec in conn.execute("SELECT name, spec FROM vms ORDER BY name"):
    sys.stdout.write(f"{name} {spec}\\n")
"""
_BASELINE_SHOW = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(*conn.execute("SELECT name, spec FROM vms WHERE name = ?", (sys.argv[2],)).fetchone())
"""


@dataclasses.dataclass
class Run:
    """One process: when its first line came, when it ended, its peak RSS, its CPU time."""

    first: float
    total: float
    rss_mb: float
    lines: int
    #: user + system seconds: what the process cost, whatever else the machine ran meanwhile
    cpu: float


@dataclasses.dataclass
class Figures:
    vms: int
    list_run: Run
    list_base: Run
    show_run: Run
    show_base: Run
    show_full: Run
    show_fast: bool
    flow_rate: float
    raw_rate: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    found = []
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-pycache-") as bytecode:
        for size in sizes:
            sample = min(args.sample, size)
            print(f"\n== {size} VMs ({sample} with real volumes) ==", flush=True)
            with tempfile.TemporaryDirectory(prefix="csi-vm-bench-scale-") as tmp:
                figures = _one_size(
                    pathlib.Path(tmp), vms_count=size, sample=sample, args=args, bytecode=bytecode
                )
            _print_size(figures)
            found.append(figures)
    _print_growth(found)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this bench process (it ran the flows)   {rss_mb:8.1f} MB")


def _one_size(
    base: pathlib.Path, *, vms_count: int, sample: int, args: argparse.Namespace, bytecode: str
) -> Figures:
    drv = driverproc.start_driver(base / "driver", extra_args=("--log-level", "WARNING"))
    try:
        env = _env(base, drv.endpoint)
        names = [f"real-{i:05d}" for i in range(sample)]
        _make_real(env, names, workers=args.concurrency)
        fleet.seed(env.store, count=vms_count - sample)
        cli_env = _cli_env(base, bytecode)
        middle = fleet.name((vms_count - sample) // 2) if vms_count > sample else names[0]
        db_file = str(env.store.path)
        show = _csi_vm("vm", "show", middle)
        full_show = [sys.executable, "-c", _FULL_CLI, "vm", "show", middle]
        base_show = _python(_BASELINE_SHOW, db_file, middle)
        for warm_up in (_csi_vm("vm", "list"), full_show, show, base_show):
            subprocess.run(warm_up, env=cli_env, stdout=subprocess.DEVNULL, check=True)
        figures = Figures(
            vms=vms_count,
            list_run=_median(lambda: _process(_csi_vm("vm", "list"), cli_env), args.runs),
            list_base=_median(
                lambda: _process(_python(_BASELINE_LIST, db_file), cli_env), args.runs
            ),
            show_run=_median(lambda: _process(show, cli_env), args.runs + 2),
            show_base=_median(lambda: _process(base_show, cli_env), args.runs + 2),
            show_full=_median(lambda: _process(full_show, cli_env), args.runs + 2),
            show_fast=_imports_no_click(show, cli_env),
            flow_rate=0.0,
            raw_rate=0.0,
        )
        if figures.list_run.lines != vms_count + 1:
            raise SystemExit(f"vm list printed {figures.list_run.lines} lines for {vms_count} VMs")
        figures.raw_rate, figures.flow_rate = _snapshot_rates(
            env, drv.endpoint, names, workers=args.concurrency
        )
        env.close()
        return figures
    finally:
        drv.stop()


def _env(base: pathlib.Path, endpoint: str) -> context.Env:
    cfg_file = base / "config.yaml"
    cfg_file.write_text(yaml.safe_dump({"drivers": {"local": {"endpoint": endpoint}}}))
    # Written an hour ago, as a host's config is: one written this instant is
    # checked again by the next command (csi_vm/cli/fastpath.py, check_config).
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(cfg_file, ns=(an_hour_ago, an_hour_ago))
    return context.Env(
        cfg=config.load(cfg_file), store=db.Store(base / "csi-vm.db"), state_dir=base / "state"
    )


def _cli_env(base: pathlib.Path, bytecode: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **inherited,
        "PYTHONPYCACHEPREFIX": bytecode,
        "CSI_VM_CONFIG": str(base / "config.yaml"),
        "CSI_VM_DB": str(base / "csi-vm.db"),
        "CSI_VM_STATE_DIR": str(base / "state"),
    }


#: the full click CLI, which the console script hands every line it does not answer
_FULL_CLI = "from csi_vm.cli.main import run; run()"


def _imports_no_click(command: list[str], env: dict[str, str]) -> bool:
    """The command ran without importing click: the console script's fast path answered."""
    done = subprocess.run(
        command,
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return bool(imported) and "click" not in imported


def _csi_vm(*args: str) -> list[str]:
    installed = pathlib.Path(sys.executable).with_name("csi-vm")
    command = [str(installed)] if installed.exists() else [sys.executable, "-m", "csi_vm"]
    return [*command, *args]


def _python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def _process(command: list[str], env: dict[str, str]) -> Run:
    """Run a command into a pipe, timing its first line and its end.

    Its peak RSS is what GNU time reports: a child's own ru_maxrss starts
    from the copy of its parent it was before exec, this bench's size.
    """
    with tempfile.NamedTemporaryFile(prefix="csi-vm-bench-rss-") as rss:
        return _timed([_GNU_TIME, "-f", "%M", "-o", rss.name, *command], env, rss_file=rss.name)


def _timed(command: list[str], env: dict[str, str], *, rss_file: str) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first_line = proc.stdout.readline()
    first = time.perf_counter() - started
    lines = first_line.count(b"\n")
    while chunk := proc.stdout.read(1 << 16):
        lines += chunk.count(b"\n")
    proc.wait()
    total = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {proc.returncode}")
    rss_kb = int(pathlib.Path(rss_file).read_text().split()[-1])
    # Processes run one at a time: the children's totals grew by this one's (and GNU time's).
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    return Run(first=first, total=total, rss_mb=rss_kb / 1024, lines=lines, cpu=cpu)


def _median(run: Callable[[], Run], times: int) -> Run:
    runs = [run() for _ in range(times)]
    return Run(
        first=statistics.median(r.first for r in runs),
        total=statistics.median(r.total for r in runs),
        rss_mb=max(r.rss_mb for r in runs),
        lines=runs[0].lines,
        cpu=statistics.median(r.cpu for r in runs),
    )


def _parallel(func: Callable[[str], object], items: list[str], workers: int) -> float:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(func, item) for item in items]:
            future.result()
    return time.perf_counter() - started


def _make_real(env: context.Env, names: list[str], *, workers: int) -> None:
    disks = [{"name": d, "size": MIB, "driver": "local", "mode": "block"} for d in fleet.DISKS]
    _parallel(
        lambda n: vms.create(env, spec.VMSpec.model_validate({"name": n, "disks": disks})),
        names,
        workers,
    )


def _snapshot_rates(
    env: context.Env, endpoint: str, names: list[str], *, workers: int
) -> tuple[float, float]:
    volumes = {n: [d.volume_id for d in records.get_vm(env.store, n).disks] for n in names}
    made: list[tuple[str, tuple[str, ...]]] = []
    with csi_client.Client(endpoint) as direct:

        def raw(name: str) -> None:
            group = direct.create_group_snapshot(tuple(volumes[name]), name=f"raw-{name}")
            made.append((group.group_snapshot_id, tuple(s.snapshot_id for s in group.snapshots)))

        raw_seconds = _parallel(raw, names, workers)
        for group_id, ids in made:  # not timed: the flow run keeps its snapshots too
            direct.delete_group_snapshot(group_id, snapshot_ids=ids)
    flow_seconds = _parallel(
        lambda n: snapshots.create(env, vm_name=n, name=f"s-{n}"), names, workers
    )
    return len(names) / raw_seconds, len(names) / flow_seconds


def _print_size(f: Figures) -> None:
    lr, lb, sr, sb = f.list_run, f.list_base, f.show_run, f.show_base
    print(
        f"vm list, first line      {lr.first * 1e3:8.0f} ms  baseline python+sqlite3 {lb.first * 1e3:6.0f} ms  = {lr.first / lb.first:5.2f}x  (target < 100 ms)"
    )
    print(
        f"vm list, whole           {lr.total:8.2f} s   baseline python+sqlite3 {lb.total:6.2f} s   = {lr.total / lb.total:5.2f}x  (target < 5 s)"
    )
    print(f"vm list, per 1,000 VMs   {_per_thousand(f) * 1e3:8.1f} ms  after the first line")
    print(
        f"vm show                  {sr.total * 1e3:8.0f} ms  baseline python+sqlite3 {sb.total * 1e3:6.0f} ms  = {sr.total / sb.total:5.2f}x  (target < 50 ms)"
    )
    print(
        f"vm show, CPU time        {sr.cpu * 1e3:8.0f} ms  baseline python+sqlite3 {sb.cpu * 1e3:6.0f} ms  = {sr.cpu / sb.cpu:5.2f}x"
    )
    fc = f.show_full
    print(
        f"vm show by the full CLI  {fc.total * 1e3:8.0f} ms  CPU time {fc.cpu * 1e3:4.0f} ms  (what the fast path spares; it answered: {'yes' if f.show_fast else 'NO'})"
    )
    print(
        f"VM snapshots, conc. C    {f.flow_rate:8.1f} /s  baseline direct CSI     {f.raw_rate:6.1f} /s  = {f.raw_rate / f.flow_rate:5.2f}x the baseline's time"
    )
    print(
        f"peak RSS of vm list      {lr.rss_mb:8.1f} MB (target < 300 MB); vm show {sr.rss_mb:.1f} MB"
    )


def _per_thousand(f: Figures) -> float:
    return (f.list_run.total - f.list_run.first) / f.vms * 1000


def _print_growth(found: list[Figures]) -> None:
    if len(found) < 2:
        return
    metrics: list[tuple[str, Callable[[Figures], float]]] = [
        ("vm list first line", lambda f: f.list_run.first),
        ("vm list per 1,000 VMs", _per_thousand),
        ("vm list whole (N lines)", lambda f: f.list_run.total),
        ("vm show", lambda f: f.show_run.total),
        ("VM snapshots per second", lambda f: f.flow_rate),
        ("peak RSS of vm list", lambda f: f.list_run.rss_mb),
    ]
    steps = list(itertools.pairwise(found))
    heads = "".join(f"  {a.vms:>7,}->{b.vms:<7,}" for a, b in steps)
    print(
        f"\ngrowth factor (1.0 = flat; x{steps[0][1].vms // steps[0][0].vms} fleet = linear){heads}"
    )
    for label, metric in metrics:
        cells = "".join(f"  {metric(b) / metric(a):15.2f}" for a, b in steps)
        print(f"{label:<28}{cells}")


if __name__ == "__main__":
    main()
