"""Benchmark the copy engine against qemu-img convert on sparse raw images.

Prints, for the same machine and run:
  - the median wall time of the engine copying a 4 GiB raw image holding
    1 GiB of data (1 MiB extents at random 1 MiB slots), as a ratio against
    the baseline ``qemu-img convert -t writeback -W -m 16 -f raw -O raw``
    (target <= 1.0, aim 0.8); runs alternate, 5 of each by default;
  - the target's allocation as a ratio of the source's (target <= 1.05);
  - the engine's median time on a 64 GiB image holding the same 1 GiB of
    data, as a ratio of its 4 GiB time (target <= 1.2);
  - whole process: the median wall time of the ``csi-vm image copy`` command
    (start-up, copy, flush) on the 4 GiB image, as a ratio against the same
    qemu-img runs (target <= 1.0); then both again with only the images
    evicted from the page cache, the programs' own files cached as on a
    machine in use (a dropped cache makes Python read every module it
    imports from disk, where qemu-img is one binary).

Both sides are durable: the engine fsyncs before it returns, and the baseline
is followed by an fsync of its output file, inside the timed span. Before
every run, dirty pages are written out (sync) and, where the sandbox allows
writing /proc/sys/vm/drop_caches, the page cache is dropped so that both
sides read the source from disk; otherwise both read it from a warm cache.
Which of the two applied is printed. No assertion is made on time.

Files live in a temporary directory under /var/tmp (or --dir) and are removed.
Usage:
    .venv/bin/python bench/copy.py [--runs 5] [--dir DIR]
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's copy module: take its folder
# off the import path before anything imports that, and put the repo on it.
sys.path.pop(0)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import pathlib
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from csi_vm.copy import engine, model

MiB = 1024 * 1024
GiB = 1024 * MiB
DATA = 1 * GiB
EXTENT = 1 * MiB
#: the console script beside this interpreter, else the module
CSI_VM = (
    [str(pathlib.Path(sys.executable).with_name("csi-vm"))]
    if pathlib.Path(sys.executable).with_name("csi-vm").exists()
    else [sys.executable, "-m", "csi_vm"]
) + ["image", "copy"]
BASELINE = ["qemu-img", "convert", "-t", "writeback", "-W", "-m", "16", "-f", "raw", "-O", "raw"]


def make_image(path: pathlib.Path, *, size: int, seed: int) -> None:
    """A sparse raw image of ``size`` bytes with DATA bytes of random data in
    EXTENT-sized pieces at random EXTENT-aligned slots."""
    rng = random.Random(seed)
    slots = sorted(rng.sample(range(size // EXTENT), DATA // EXTENT))
    with path.open("wb") as f:
        f.truncate(size)
        for slot in slots:
            f.seek(slot * EXTENT)
            f.write(rng.randbytes(EXTENT))
        f.flush()
        os.fsync(f.fileno())


def settle() -> bool:
    """Write out dirty pages and drop the page cache; False where that is refused."""
    os.sync()
    try:
        pathlib.Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def run_engine(src: pathlib.Path, dst: pathlib.Path) -> tuple[float, str]:
    started = time.perf_counter()
    result = engine.copy(src, dst, options=model.Options())
    return time.perf_counter() - started, result.method.value


def run_baseline(src: pathlib.Path, dst: pathlib.Path) -> float:
    started = time.perf_counter()
    subprocess.run([*BASELINE, str(src), str(dst)], check=True)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


def evict(images: dict[str, pathlib.Path]) -> bool:
    """Write out dirty pages and drop only the images' cached pages."""
    os.sync()
    for path in images.values():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def run_command(src: pathlib.Path, dst: pathlib.Path) -> float:
    """The `csi-vm image copy` command as a user runs it; it flushes before it exits."""
    started = time.perf_counter()
    subprocess.run([*CSI_VM, str(src), str(dst)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def allocated(path: pathlib.Path) -> int:
    return os.stat(path).st_blocks * 512


def timed_runs(images: dict[str, pathlib.Path], dst: pathlib.Path, runs: int) -> dict[str, Any]:
    """Median seconds of each side, runs rotated so that drift hits all sides alike."""
    sides: dict[str, Callable[[], float]] = {
        "engine 4G": lambda: _engine_side(images["4G"], dst, methods, allocations),
        "qemu-img 4G": lambda: _baseline_side(images["4G"], dst, allocations),
        "engine 64G": lambda: _engine_side(images["64G"], dst, methods, allocations),
        "csi-vm 4G": lambda: run_command(images["4G"], dst),
        "csi-vm 4G warm": lambda: run_command(images["4G"], dst),
        "qemu-img 4G warm": lambda: run_baseline(images["4G"], dst),
    }
    methods: set[str] = set()
    allocations: dict[str, int] = {}
    times: dict[str, list[float]] = {name: [] for name in sides}
    dropped = True
    order = list(sides)
    for i in range(runs):
        for name in order[i % len(order) :] + order[: i % len(order)]:
            dst.unlink(missing_ok=True)
            dropped = (evict(images) if name.endswith("warm") else settle()) and dropped
            times[name].append(sides[name]())
            print(f"  run {i + 1} {name:16} {times[name][-1]:7.2f} s", flush=True)
    dst.unlink(missing_ok=True)
    return {
        "median": {name: statistics.median(values) for name, values in times.items()},
        "methods": methods,
        "allocations": allocations,
        "dropped": dropped,
    }


def _engine_side(
    src: pathlib.Path, dst: pathlib.Path, methods: set[str], allocations: dict[str, int]
) -> float:
    seconds, method = run_engine(src, dst)
    methods.add(method)
    allocations[f"engine {src.name}"] = allocated(dst)
    return seconds


def _baseline_side(src: pathlib.Path, dst: pathlib.Path, allocations: dict[str, int]) -> float:
    seconds = run_baseline(src, dst)
    allocations[f"qemu-img {src.name}"] = allocated(dst)
    return seconds


def report(images: dict[str, pathlib.Path], found: dict[str, Any]) -> None:
    median = found["median"]
    eng, qemu, big = median["engine 4G"], median["qemu-img 4G"], median["engine 64G"]
    alloc = found["allocations"]
    source = allocated(images["4G"])
    dropped = "yes" if found["dropped"] else "no (refused)"
    print(f"page cache dropped before each run but the 'warm' ones: {dropped}")
    print(f"engine method: {', '.join(sorted(found['methods']))}")
    print(f"4 GiB image, 1 GiB data: engine median {eng:.2f} s, qemu-img median {qemu:.2f} s")
    print(f"  wall ratio engine / qemu-img: {eng / qemu:.3f}  (target <= 1.0, aim 0.8)")
    print(
        f"  target allocation / source: engine {alloc['engine src-4g.img'] / source:.4f}, "
        f"qemu-img {alloc['qemu-img src-4g.img'] / source:.4f}  (target <= 1.05)"
    )
    print(f"64 GiB image, same 1 GiB data: engine median {big:.2f} s")
    print(f"  ratio to the 4 GiB time: {big / eng:.3f}  (target <= 1.2)")
    whole = median["csi-vm 4G"]
    print(f"whole process, 4 GiB image: csi-vm image copy median {whole:.2f} s")
    print(f"  wall ratio csi-vm image copy / qemu-img: {whole / qemu:.3f}  (target <= 1.0)")
    warm, warm_qemu = median["csi-vm 4G warm"], median["qemu-img 4G warm"]
    print(
        f"  programs cached, images not: csi-vm median {warm:.2f} s, "
        f"qemu-img median {warm_qemu:.2f} s, ratio {warm / warm_qemu:.3f}  (target <= 1.0)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("/var/tmp"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-copy-", dir=args.dir) as tmp:
        base = pathlib.Path(tmp)
        images = {"4G": base / "src-4g.img", "64G": base / "src-64g.img"}
        print("making the images ...", flush=True)
        make_image(images["4G"], size=4 * GiB, seed=4)
        make_image(images["64G"], size=64 * GiB, seed=64)
        report(images, timed_runs(images, base / "dst.img", args.runs))


if __name__ == "__main__":
    main()
