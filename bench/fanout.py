"""Fan out one VM into many clones on the local driver, against single image copies.

A golden VM with one block disk (4 GiB holding 1 GiB of random data in 1 MiB
extents at random slots) is cloned --count times (default 100) by the real
`csi-vm clone` command, in three cases, each on a fresh filesystem of its own
(a loop device with direct I/O over a sparse file under --dir, so that what
the filesystem writes reaches the disk and is counted on that device):
  - reflink: native CSI clone, the driver's state dir on XFS with reflink;
  - copy: native CSI clone on ext4, where the driver copies the data;
  - host-copy: the driver started without clone and snapshot, so csi-vm
    copies every clone through the host.
Printed per case: total time, time per clone, bytes written (sectors written
to the filesystem's loop device), space used (the filesystem's used blocks
before and after) and the strategy csi-vm chose.

Baseline, in the same run on each case's filesystem just before its fan-out
(the machine may be shared, so conditions drift between cases): one
`csi-vm image copy` of the golden disk onto it, times --count. Also measured
there: the disk's sequential write rate (1 GiB written with O_DIRECT), measured
again just after the fan-out; the rate used is the mean of the two, as the
machine may be shared. Printed against the targets of the issue:
  - reflink: all clones in under 10 s (for 100 clones; scaled with --count)
    and under 5% extra space (of the golden disk's data);
  - host-copy: within 1.2 x (bytes that must be written / sequential rate);
    the copy case, which writes the same bytes by the driver, is printed
    against the same measure.
For the reflink case, the same number of CreateVolume clones sent straight to
the driver over gRPC is timed too: what the reflink itself costs, beside what
the csi-vm fan-out adds (its journal, checks and attachments). So are the
verification's reads alone: the sampled blocks (up to 4096) of as many
reflinked copies of the golden disk, each read through a buffered loop device
of its own (as the local driver's), --parallel at a time, with no csi-vm work
around them: on a small machine they are most of the fan-out's time.
The fan-out is `csi-vm clone SOURCE --count N --name-template lab-{i}` where
the command has --count (with --parallel), else one `csi-vm clone` per
clone, in sequence (which of the two is printed).
No assertion is made on time. Needs root, mkfs.xfs and mkfs.ext4. The copy
cases need about --count x --data bytes free under --dir (100 GiB by default):
each clone holds the golden disk's data, written in full (only its data: holes
stay holes). Where that does not fit, a smaller --data keeps --count (e.g.
--count 100 --data 256Mi); the host-copy target is a ratio to the bytes that
must be written, so it holds at any data size, though fixed costs per clone
weigh more with less data.

Usage: .venv/bin/python bench/fanout.py [--count 100] [--size 4Gi] [--data 1Gi]
       [--parallel 4] [--dir /var/tmp] [--cases reflink,copy,host-copy]
"""

from __future__ import annotations

import os
import sys

# bench/ holds a copy.py that would shadow the standard library's copy module:
# take this folder off the import path, and put the repo on it.
sys.path.pop(0)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import concurrent.futures
import contextlib
import dataclasses
import pathlib
import random
import subprocess
import tempfile
import time
from collections.abc import Iterator

import grpc
import yaml

from csi_vm import sizes
from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.csi.pb import csi_pb2_grpc as pbg
from tests.support import driverproc

MiB = 1 << 20
GiB = 1 << 30
EXTENT = MiB
CASES = ("reflink", "copy", "host-copy")
#: the issue's targets, for 100 clones
REFLINK_TARGET_S = 10.0
REFLINK_SPACE_PCT = 5.0
HOST_COPY_RATIO = 1.2
BASELINE = "csi-vm image copy of the golden disk, x count"
#: bytes of each sequential write-rate measurement
RATE_BYTES = GiB
#: deadline of each CSI call (config `timeout:`), long enough for a copying clone
CSI_TIMEOUT_S = 600
CSI_VM = [str(pathlib.Path(sys.executable).with_name("csi-vm"))]


@dataclasses.dataclass(frozen=True)
class Backing:
    """A mounted filesystem on a loop device, and how to read what it wrote."""

    mount: pathlib.Path
    device: str  # loopN

    def written(self) -> int:
        """Bytes written to the device since it was set up (field 7: sectors written)."""
        os.sync()
        fields = pathlib.Path(f"/sys/block/{self.device}/stat").read_text().split()
        return int(fields[6]) * 512

    def used(self) -> int:
        os.sync()
        st = os.statvfs(self.mount)
        return (st.f_blocks - st.f_bfree) * st.f_frsize


@dataclasses.dataclass(frozen=True)
class Result:
    case: str
    strategy: str
    seconds: float
    written: int
    used: int
    base: Baseline
    #: reflink only: the same number of clones as bare CreateVolume calls to the driver
    driver_s: float | None = None
    #: reflink only: the clones' sampled reads alone, through loop devices (`sample_reads`)
    reads_s: float | None = None
    #: the sequential write rate measured again just after the fan-out
    rate_after: float = 0.0

    @property
    def rate(self) -> float:
        """The disk's write rate during the case: the mean of the rates before and after it."""
        return (self.base.rate + self.rate_after) / 2 if self.rate_after else self.base.rate


@contextlib.contextmanager
def backing(work: pathlib.Path, *, name: str, fs: str, size: int) -> Iterator[Backing]:
    """A fresh sparse file of `size` bytes, formatted `fs` and mounted; removed after."""
    image = work / f"{name}.fs"
    with image.open("wb") as f:
        f.truncate(size)
    mount = work / name
    mount.mkdir()
    device = subprocess.run(
        ["losetup", "--find", "--show", "--direct-io=on", str(image)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    try:
        _format(device, fs)
        # noinit_itable: ext4 would otherwise zero its inode tables in the
        # background while the clones run, and count it as their writes.
        options = ["-o", "noinit_itable"] if fs == "ext4" else []
        subprocess.run(["mount", *options, device, str(mount)], check=True)
        try:
            yield Backing(mount=mount, device=pathlib.Path(device).name)
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)
        image.unlink()


def _format(device: str, fs: str) -> None:
    if fs == "xfs":
        cmd = ["mkfs.xfs", "-q", "-K", "-m", "reflink=1", device]
    else:
        # one inode per 4 MiB keeps the inode tables small on a large sparse file
        cmd = ["mkfs.ext4", "-q", "-T", "largefile4", "-E", "lazy_itable_init=0", device]
    subprocess.run(cmd, check=True)


def make_image(path: pathlib.Path, *, size: int, data: int, seed: int = 15) -> None:
    """A sparse raw image with `data` bytes of random data in EXTENT pieces."""
    rng = random.Random(seed)
    slots = sorted(rng.sample(range(size // EXTENT), data // EXTENT))
    with path.open("wb") as f:
        f.truncate(size)
        for slot in slots:
            f.seek(slot * EXTENT)
            f.write(rng.randbytes(EXTENT))
        f.flush()
        os.fsync(f.fileno())


def evict(path: pathlib.Path) -> None:
    """Write out and drop a file's cached pages, so that a copy reads it from disk."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def sequential_rate(where: pathlib.Path, nbytes: int, *, name: str = "sequential") -> float:
    """Bytes per second of one large O_DIRECT write, flushed (what dd oflag=direct does)."""
    # On a quiet disk: else the writeback of what came before (the golden
    # disk's import just written) shares it, and the rate reads low.
    os.sync()
    target = where / name
    started = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=4M", f"count={nbytes // (4 * MiB)}",
         "oflag=direct", "conv=fsync", "status=none"],
        check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    return nbytes // (4 * MiB) * 4 * MiB / elapsed


@dataclasses.dataclass(frozen=True)
class Baseline:
    seconds: float  # one csi-vm image copy of the golden disk
    written: int  # bytes that copy wrote
    rate: float  # the filesystem's sequential write rate, bytes per second


def baseline(fs: Backing, golden: pathlib.Path, *, data: int) -> Baseline:
    """One image copy of the golden disk onto `fs`, and its write rate.

    Both files stay until the filesystem goes: XFS frees an unlinked file's
    blocks in the background, which would show as space the fan-out gave back.
    """
    # Always 1 GiB: a shorter write is mostly the host's cache (256 MiB gave
    # 538 and 1387 MiB/s on one disk minutes apart).
    rate = sequential_rate(fs.mount, RATE_BYTES)
    evict(golden)
    target = fs.mount / "baseline.raw"
    written = fs.written()
    started = time.perf_counter()
    subprocess.run([*CSI_VM, "image", "copy", str(golden), str(target)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    seconds = time.perf_counter() - started
    return Baseline(seconds, fs.written() - written, rate)


class Lab:
    """A local driver with its state dir on `fs`, and csi-vm's config and store beside it."""

    def __init__(self, work: pathlib.Path, fs: Backing, *, without: tuple[str, ...]) -> None:
        self.work = work
        self.driver = driverproc.start_driver(
            work / "driver",
            state_dir=fs.mount / "state",
            without=without,
            extra_args=("--log-level", "WARNING"),
        )
        config = work / "config.yaml"
        # A driver that copies inside CreateVolume (the copy case) takes longer
        # than the default 10 s deadline of a CSI call for a 1 GiB clone while
        # others copy beside it; a deadline that ends the call makes the retry
        # find the first still in flight (ABORTED), and the fan-out fails.
        driver = {"endpoint": self.driver.endpoint, "timeout": CSI_TIMEOUT_S}
        config.write_text(yaml.safe_dump({"node": "node-a", "drivers": {"local": driver}}))
        self.env = {
            **os.environ,
            "CSI_VM_CONFIG": str(config),
            "CSI_VM_DB": str(work / "csi-vm.db"),
            "CSI_VM_STATE_DIR": str(work / "state"),
        }

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [*CSI_VM, *args], env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"csi-vm {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done.stdout

    def create_golden(self, image: pathlib.Path, size: int) -> None:
        vm = {"name": "golden", "memory_mib": 128,
              "disks": [{"name": "root", "size": size, "driver": "local", "source": {"image": str(image)}}]}  # fmt: skip
        (self.work / "golden.yaml").write_text(yaml.safe_dump(vm))
        self.cli("vm", "create", "-f", str(self.work / "golden.yaml"))

    def strategy(self) -> str:
        """What a clone of the golden VM will do; also probes the driver, outside the timing."""
        plan = yaml.safe_load(self.cli("clone", "golden", "lab-plan", "--dry-run", "-o", "yaml"))
        return ", ".join(sorted({d["strategy"] for d in plan["disks"]}))

    def fan_out(self, count: int, *, parallel: int) -> None:
        if has_count_option():
            template = ("--name-template", "lab-{i}", "--parallel", str(parallel))
            self.cli("clone", "golden", "--count", str(count), *template)
            return
        for i in range(1, count + 1):
            self.cli("clone", "golden", f"lab-{i}")

    def driver_clones(self, count: int) -> float:
        """Seconds of `count` CreateVolume clones of the golden disk, straight to the driver:
        what the driver's reflink costs without csi-vm's journal, checks and attachments."""
        shown = yaml.safe_load(self.cli("vm", "show", "golden", "-o", "yaml"))
        disk = shown["disks"][0]
        block = pb.VolumeCapability.BlockVolume()
        mode = pb.VolumeCapability.AccessMode(
            mode=pb.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        )
        source = pb.VolumeContentSource(
            volume=pb.VolumeContentSource.VolumeSource(volume_id=disk["volume_id"])
        )
        with grpc.insecure_channel(self.driver.endpoint) as channel:
            ctl = pbg.ControllerStub(channel)
            started = time.perf_counter()
            for i in range(count):
                ctl.CreateVolume(
                    pb.CreateVolumeRequest(
                        name=f"bare-{i}",
                        capacity_range=pb.CapacityRange(required_bytes=disk["size"]),
                        volume_capabilities=[pb.VolumeCapability(block=block, access_mode=mode)],
                        volume_content_source=source,
                    )
                )
            return time.perf_counter() - started

    def stop(self) -> None:
        self.driver.stop()


def sample_reads(fs: Backing, golden: pathlib.Path, *, count: int, parallel: int) -> float:
    """Seconds to read the sampled blocks a clone's verification reads, of `count`
    reflinked copies of the golden disk, each through a loop device of its own
    (buffered, as the local driver's), `parallel` at a time: what verifying the
    clones costs on this machine without any of csi-vm's other work."""
    from csi_vm.flows import effects  # noqa: PLC0415 - the reads csi-vm's verification does

    size = golden.stat().st_size
    first = fs.mount / "reads-0.raw"
    subprocess.run(["cp", "--sparse=always", str(golden), str(first)], check=True)
    copies = [first]
    for i in range(1, count):
        copies.append(fs.mount / f"reads-{i}.raw")
        subprocess.run(["cp", "--reflink=always", str(first), str(copies[-1])], check=True)
    os.sync()
    devices = [_losetup(c) for c in copies]
    try:
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            started = time.perf_counter()
            list(pool.map(lambda d: effects.sampled(d, size=size), devices))
            return time.perf_counter() - started
    finally:
        for device in devices:
            subprocess.run(["losetup", "--detach", device], check=True)


def _losetup(path: pathlib.Path) -> str:
    return subprocess.run(
        ["losetup", "--find", "--show", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()


def has_count_option() -> bool:
    """Whether `csi-vm clone` fans out by itself (--count), or needs one run per clone."""
    help_text = subprocess.run(
        [*CSI_VM, "clone", "--help"], capture_output=True, text=True, check=False
    )
    return "--count" in help_text.stdout


def run_case(
    work: pathlib.Path,
    golden: pathlib.Path,
    *,
    case: str,
    count: int,
    size: int,
    data: int,
    parallel: int,
) -> Result:
    fs_type = "xfs" if case == "reflink" else "ext4"
    copies = 1 if case == "reflink" else count + 1
    # Sparse: the driver refuses a volume larger than the free space, so the
    # filesystem is sized for every clone's full size; only data takes room.
    fs_size = size * (count + 3) + (copies + 2) * data + 4 * GiB
    case_dir = work / case
    case_dir.mkdir()
    with backing(case_dir, name="fs", fs=fs_type, size=fs_size) as fs:
        lab = Lab(case_dir, fs, without=("snapshot", "clone") if case == "host-copy" else ())
        try:
            lab.create_golden(golden, size)
            strategy = lab.strategy()
            # measured here, just before the fan-out: the machine may be shared
            base = baseline(fs, golden, data=data)
            used, written = fs.used(), fs.written()
            started = time.perf_counter()
            lab.fan_out(count, parallel=parallel)
            os.sync()  # clones are flushed by the driver and the copy engine; this is cheap
            seconds = time.perf_counter() - started
            result = Result(case, strategy, seconds, fs.written() - written, fs.used() - used, base)
            after = sequential_rate(fs.mount, RATE_BYTES, name="sequential-after")
            result = dataclasses.replace(result, rate_after=after)
            if case == "reflink":
                reads = sample_reads(fs, golden, count=count, parallel=parallel)
                return dataclasses.replace(result, driver_s=lab.driver_clones(count), reads_s=reads)
            return result
        finally:
            lab.stop()


def report(results: list[Result], *, count: int, data: int) -> None:
    print(f"\nfan-out of {count} clones; golden disk {sizes_text(data)} of data")
    print(f"baseline: {BASELINE}, measured on each case's filesystem before its fan-out")
    print(f"{'case':<10} {'strategy':<17} {'total s':>8} {'s/clone':>8} {'written':>10} "
          f"{'space':>10} {'base s':>7} {'x count':>8} {'/baseline':>9} {'seq MiB/s':>9}")  # fmt: skip
    for r in results:
        print(f"{r.case:<10} {r.strategy:<17} {r.seconds:>8.2f} {r.seconds / count:>8.3f} "
              f"{sizes_text(r.written):>10} {sizes_text(r.used):>10} {r.base.seconds:>7.2f} "
              f"{r.base.seconds * count:>8.1f} {r.seconds / (r.base.seconds * count):>9.3f} "
              f"{r.rate / MiB:>9.0f}")  # fmt: skip
    for r in results:
        targets(r, count=count, data=data)


def targets(r: Result, *, count: int, data: int) -> None:
    """The issue's targets for the case of `r`, beside its figures."""
    if r.case == "reflink":
        target = REFLINK_TARGET_S * count / 100
        pct = 100 * r.used / data
        print(f"reflink target: {r.seconds:.2f} s against < {target:.1f} s ({r.seconds / target:.2f} x); "
              f"extra space {pct:.2f}% of the golden data against < {REFLINK_SPACE_PCT:.0f}%")  # fmt: skip
        if r.driver_s is not None:
            print(f"  the driver alone: {count} CreateVolume clones of the golden disk in "
                  f"{r.driver_s:.2f} s; the csi-vm fan-out takes {r.seconds / r.driver_s:.1f} x that")  # fmt: skip
        if r.reads_s is not None:
            print(f"  the verification's reads alone (each of {count} reflinked copies' sampled "
                  f"blocks, through a loop device of its own): {r.reads_s:.2f} s")  # fmt: skip
    if r.case in ("host-copy", "copy"):
        # The copy case writes the same bytes, by the driver: held to the same measure.
        floor = count * data / r.rate
        print(f"{r.case} target: {r.seconds:.2f} s against {count} x {sizes_text(data)} / rate = "
              f"{floor:.1f} s: {r.seconds / floor:.2f} x (target <= {HOST_COPY_RATIO}); rate "
              f"{r.base.rate / MiB:.0f} MiB/s before the fan-out, {r.rate_after / MiB:.0f} after")  # fmt: skip


def sizes_text(n: int) -> str:
    return f"{n / GiB:.2f} GiB" if n >= GiB else f"{n / MiB:.1f} MiB"


def need_free(work: pathlib.Path, *, cases: list[str], count: int, data: int) -> None:
    """Refuse to start when --dir cannot hold the copies the cases will write."""
    need = ((count + 4) * data if set(cases) - {"reflink"} else 5 * data) + 2 * RATE_BYTES
    st = os.statvfs(work)
    free = st.f_bavail * st.f_frsize
    if free < need:
        sys.exit(
            f"bench/fanout.py: {work} has {sizes_text(free)} free, the copy cases need about "
            f"{sizes_text(need)}: use a larger --dir, or a smaller --count or --data"
        )


def _bytes(text: str) -> int:
    return sizes.parse(text).bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="clones per case")
    parser.add_argument("--size", type=_bytes, default=4 * GiB, help="the golden disk's size (4Gi)")
    parser.add_argument("--data", type=_bytes, default=GiB, help="data in the golden disk (1Gi)")
    parser.add_argument(
        "--parallel", type=int, default=4, help="clones in flight at once (with clone --count)"
    )
    parser.add_argument("--dir", type=pathlib.Path, default=pathlib.Path("/var/tmp"))
    parser.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES)
    )
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if unknown := set(cases) - set(CASES):
        sys.exit(
            f"bench/fanout.py: unknown case(s) {', '.join(sorted(unknown))}; known: {', '.join(CASES)}"
        )
    if args.data % EXTENT or args.size % EXTENT or args.data > args.size:
        sys.exit("bench/fanout.py: --size and --data must be whole MiB, and --data at most --size")
    need_free(args.dir, cases=cases, count=args.count, data=args.data)
    mode = (
        f"one csi-vm clone --count --parallel {args.parallel}"
        if has_count_option()
        else "one csi-vm clone per clone, one at a time"
    )
    print(f"{os.cpu_count()} CPUs; fan-out by {mode}")
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-fanout-", dir=args.dir) as name:
        work = pathlib.Path(name)
        golden = work / "golden.raw"
        make_image(golden, size=args.size, data=args.data)
        results = []
        for case in cases:
            results.append(
                run_case(
                    work,
                    golden,
                    case=case,
                    count=args.count,
                    size=args.size,
                    data=args.data,
                    parallel=args.parallel,
                )
            )
            r = results[-1]
            print(f"  {case}: {r.seconds:.2f} s, {sizes_text(r.written)} written; baseline "
                  f"{r.base.seconds:.2f} s, {sizes_text(r.base.written)} written", flush=True)  # fmt: skip
        report(results, count=args.count, data=args.data)


if __name__ == "__main__":
    main()
