"""Benchmark the start-up of each `csi-vm` command against a bare Python start.

Prints, for the same machine and run, the median wall time of each command
as a whole process (the installed `csi-vm` script, output thrown away) beside
the median of ``python -c pass`` with the same interpreter:
  - `csi-vm --help` and `csi-vm version`: target under 150 ms in all;
  - `--help` of every group and top-level command, and two cheap real
    commands (`vm list` on an empty store, `image copy --dry-run` of a small
    file): the start-up each adds to Python's own, target at most 200 ms.
Runs go in turn (every command once, then again), so that a drift in the
machine's load hits all of them alike. No assertion is made on time.

Usage:
    .venv/bin/python bench/cli.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

#: absolute target of the commands a user runs to find their way
QUICK_MS = 150.0
#: most start-up any command may add to a bare Python start
ADDED_MS = 200.0

QUICK = (("--help",), ("version",))
HELP = (
    ("capabilities", "--help"),
    ("capabilities", "probe", "--help"),
    ("vm", "--help"),
    ("disk", "--help"),
    ("snapshot", "--help"),
    ("image", "--help"),
    ("controller", "--help"),
    ("node-agent", "--help"),
    ("clone", "--help"),
    ("resume", "--help"),
    ("migrate", "--help"),
    ("quickstart", "--help"),
    ("localdriver", "--help"),
)


def _csi_vm() -> list[str]:
    """The console script beside this interpreter, as a user runs it."""
    script = pathlib.Path(sys.executable).with_name("csi-vm")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "csi_vm"]


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    return seconds


def _real_commands(base: pathlib.Path) -> tuple[tuple[str, ...], ...]:
    config = base / "config.yaml"
    config.write_text("drivers: {}\n")
    image = base / "small.raw"
    image.write_bytes(b"\1" * 65536)
    return (
        ("vm", "list", "--config", str(config), "--db", str(base / "csi-vm.db")),
        ("image", "copy", str(image), str(base / "copy.raw"), "--dry-run"),
    )


def measure(commands: list[tuple[str, ...]], runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median milliseconds of each command line, and of the baseline under key ""."""
    argvs = {"": [sys.executable, "-c", "pass"]}
    argvs.update({" ".join(c): [*_csi_vm(), *c] for c in commands})
    times: dict[str, list[float]] = {key: [] for key in argvs}
    for _ in range(runs):
        for key, argv in argvs.items():
            times[key].append(_timed(argv, env) * 1000)
    return {key: statistics.median(values) for key, values in times.items()}


def report(medians: dict[str, float], runs: int) -> None:
    base = medians.pop("")
    print(f"median of {runs} runs each; python -c pass: {base:.0f} ms")
    print(f"{'command':60} {'ms':>6} {'added':>6} {'ratio':>6}  target")
    for key, ms in medians.items():
        quick = tuple(key.split()) in QUICK
        met = ms < QUICK_MS if quick else ms - base <= ADDED_MS
        target = f"< {QUICK_MS:.0f} ms" if quick else f"added <= {ADDED_MS:.0f} ms"
        shown = key if len(key) <= 60 else key[:57] + "..."
        print(
            f"{'csi-vm ' + shown:60} {ms:6.0f} {ms - base:6.0f} {ms / base:6.2f}  "
            f"{target} {'met' if met else 'MISSED'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-cli-") as tmp:
        base = pathlib.Path(tmp)
        # Nothing from the user's own state: the commands read a fresh store.
        env["CSI_VM_STATE_DIR"] = str(base / "state")
        commands = [*QUICK, *HELP, *_real_commands(base)]
        report(measure(commands, args.runs, env), args.runs)


if __name__ == "__main__":
    main()
