"""Benchmark the local reference driver's controller path.

Prints, for the same machine and run, at concurrency 1 and 8:
  - CreateVolume+DeleteVolume pairs per second (1 GiB sparse volumes),
  - CreateSnapshot+DeleteSnapshot pairs per second (of a 1 GiB sparse volume),
each as a ratio against two baselines measured in this process:
  - "probe": bare gRPC Identity.Probe round trips per second against the same
    driver (the RPC layer's ceiling; a pair costs two round trips),
  - "file": raw create (1 GiB sparse, fsync, rename) + unlink pairs per second
    in the driver's state dir (the storage layer's floor),
and against the target of 200 pairs per second.

Usage: .venv/bin/python bench/driver.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import pathlib
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.csi.pb import csi_pb2_grpc as pbg
from tests.support import driverproc

GiB = 1 << 30
TARGET_PAIRS_PER_S = 200.0
CONCURRENCY = (1, 8)

_counter = itertools.count()


def _rate(work: Callable[[], None], *, workers: int, seconds: float) -> float:
    """Operations per second of `work` run back to back by `workers` threads."""
    stop = time.monotonic() + seconds
    done = [0] * workers

    def loop(slot: int) -> None:
        while time.monotonic() < stop:
            work()
            done[slot] += 1

    started = time.monotonic()
    with futures.ThreadPoolExecutor(workers) as pool:
        for result in [pool.submit(loop, i) for i in range(workers)]:
            result.result()
    return sum(done) / (time.monotonic() - started)


def _cap() -> pb.VolumeCapability:
    return pb.VolumeCapability(
        mount=pb.VolumeCapability.MountVolume(),
        access_mode=pb.VolumeCapability.AccessMode(
            mode=pb.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        ),
    )


def volume_pair(ctl: pbg.ControllerStub) -> Callable[[], None]:
    def pair() -> None:
        request = pb.CreateVolumeRequest(
            name=f"bench-vol-{next(_counter)}",
            capacity_range=pb.CapacityRange(required_bytes=GiB),
            volume_capabilities=[_cap()],
        )
        volume_id = ctl.CreateVolume(request).volume.volume_id
        ctl.DeleteVolume(pb.DeleteVolumeRequest(volume_id=volume_id))

    return pair


def snapshot_pair(ctl: pbg.ControllerStub, source_id: str) -> Callable[[], None]:
    def pair() -> None:
        request = pb.CreateSnapshotRequest(
            name=f"bench-snap-{next(_counter)}", source_volume_id=source_id
        )
        snapshot_id = ctl.CreateSnapshot(request).snapshot.snapshot_id
        ctl.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot_id=snapshot_id))

    return pair


def probe_call(identity: pbg.IdentityStub) -> Callable[[], None]:
    return lambda: identity.Probe(pb.ProbeRequest())


def file_pair(directory: pathlib.Path) -> Callable[[], None]:
    """What a create+delete must do at least: the sparse image, durably, and its removal."""
    lock = threading.Lock()

    def pair() -> None:
        with lock:
            name = f"bench-{next(_counter)}"
        temp, final = directory / f".tmp-{name}", directory / name
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, GiB)
        os.fsync(fd)
        os.rename(temp, final)
        os.close(fd)
        os.unlink(final)

    return pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-driver-") as tmp:
        drv = driverproc.start_driver(pathlib.Path(tmp), extra_args=("--log-level", "WARNING"))
        try:
            _run(drv, pathlib.Path(tmp), args.seconds)
        finally:
            drv.stop()


def _run(drv: driverproc.DriverProcess, tmp: pathlib.Path, seconds: float) -> None:
    channel = grpc.insecure_channel(drv.endpoint)
    ctl, identity = pbg.ControllerStub(channel), pbg.IdentityStub(channel)
    source = ctl.CreateVolume(
        pb.CreateVolumeRequest(
            name="bench-source",
            capacity_range=pb.CapacityRange(required_bytes=GiB),
            volume_capabilities=[_cap()],
        )
    ).volume.volume_id
    scratch = tmp / "scratch"
    scratch.mkdir()
    print(f"local driver, {seconds:g} s per figure, {os.cpu_count()} CPUs")
    print(f"{'workload':<38}{'conc':>5}{'per s':>10}{'/probe':>9}{'/file':>9}{'/target':>9}")
    for workers in CONCURRENCY:
        probe_rate = _rate(probe_call(identity), workers=workers, seconds=seconds)
        file_rate = _rate(file_pair(scratch), workers=workers, seconds=seconds)
        print(f"{'baseline probe: Probe round trips':<38}{workers:>5}{probe_rate:>10.0f}")
        print(f"{'baseline file: sparse create+unlink':<38}{workers:>5}{file_rate:>10.0f}")
        for label, work in (
            ("CreateVolume+DeleteVolume", volume_pair(ctl)),
            ("CreateSnapshot+DeleteSnapshot", snapshot_pair(ctl, source)),
        ):
            rate = _rate(work, workers=workers, seconds=seconds)
            print(
                f"{label:<38}{workers:>5}{rate:>10.0f}{rate / probe_rate:>9.3f}"
                f"{rate / file_rate:>9.3f}{rate / TARGET_PAIRS_PER_S:>9.2f}"
            )
    channel.close()


if __name__ == "__main__":
    main()
