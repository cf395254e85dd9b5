"""Believe effects, not answers: what a native CSI operation did, as this node sees it.

Some drivers answer an expansion and leave the device as it was, or answer a
clone ready and hand back a blank volume. Each native operation of a flow is
therefore followed by a look at the volume published on this node:

    measure   the size the node sees: the device's size (for a filesystem
              volume, of the device under it where there is one) and, for a
              filesystem, the filesystem's size
    require   a new volume holds at least the disk: device, or image file
    compare   a new volume against its source: the size, then a sample of
              blocks spread over the whole disk (every block with `full`);
              for a snapshot, also the fingerprint of those sampled blocks;
              with `once`, the source's sampled blocks are read by the first
              compare against it in this process only (a fan-out's clones)
    match     a volume restored from a snapshot against that fingerprint: a
              snapshot keeps no source to compare with, so what its data
              looked like when it was taken is all a restore can be held to

`compare` raises `EffectMissing` (an OperationFailed: the flow rolls back) and
forgets the driver's cached capability report, so the next operation probes
the driver afresh and takes the fallback the probe then finds.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import threading
from typing import Any

from csi_vm import diskfile, errors, spec
from csi_vm.flows import context, devcheck, vm_actions
from csi_vm.store import records

Data = dict[str, Any]

#: bytes read at each sampled place: one block of every device in use
SAMPLE_BYTES = 4096
#: at most this many places are sampled, at least this far apart; 64 KiB
#: strides meet every allocated extent of a disk up to 256 MiB
MAX_SAMPLES = 4096
MIN_STRIDE = 64 * 1024
#: chunk of a full compare
FULL_CHUNK = 4 * 1024 * 1024
#: bytes of each sampled block's SHA-256 a fingerprint keeps: ample to tell a
#: driver's wrong or missing data from the snapshot's (this guards against
#: mistakes, not forgery), and 4096 samples stay 64 KiB of hex in the store
DIGEST_BYTES = 8


class EffectMissing(errors.OperationFailed):
    """A driver answered success, but the node does not show the effect."""


def device_size(path: str, mode: str) -> int | None:
    """The size of the device a disk is on; None for a filesystem not on a block device (NFS)."""
    if mode == spec.Mode.BLOCK:
        return devcheck.size_of(path)
    dev = os.stat(pathlib.Path(path).parent).st_dev
    sysfs = pathlib.Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/size")
    try:
        return int(sysfs.read_text()) * 512  # sysfs counts 512-byte sectors
    except (OSError, ValueError):
        return None


def filesystem_size(path: str) -> int:
    """The size of the filesystem holding a disk's image file."""
    st = os.statvfs(pathlib.Path(path).parent)
    return st.f_blocks * st.f_frsize


def stride_for(size: int) -> int:
    """How far apart a sampled compare of `size` bytes reads."""
    return max(MIN_STRIDE, -(-size // MAX_SAMPLES))


def offsets(size: int, stride: int = 0) -> list[int]:
    """Where a sampled compare reads: evenly spread, first and last block included."""
    if size <= 0:
        return []
    stride = stride or stride_for(size)
    places = list(range(0, size, stride))
    last = max(size - SAMPLE_BYTES, 0)
    if places[-1] != last:
        places.append(last)
    return places


def first_difference(src: str, dst: str, *, size: int, full: bool) -> int | None:
    """The first offset where `dst` differs from `src` in the compared range, or None."""
    if not full:
        return first_unlike(sampled(src, size=size), dst, size=size)
    with open(src, "rb", buffering=0) as a, open(dst, "rb", buffering=0) as b:
        return _full(a.fileno(), b.fileno(), size)


def sampled(path: str, *, size: int) -> list[bytes]:
    """The blocks a sampled compare of `size` bytes reads of `path`, in `offsets` order."""
    places = offsets(size)
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        _prefetch(fd, places)
        return [os.pread(fd, min(SAMPLE_BYTES, size - at), at) for at in places]


def first_unlike(blocks: list[bytes], dst: str, *, size: int) -> int | None:
    """The first sampled offset where `dst` differs from the source's `blocks`, or None."""
    places = offsets(size)
    with open(dst, "rb", buffering=0) as f:
        fd = f.fileno()
        _prefetch(fd, places)
        for at, block in zip(places, blocks, strict=True):
            if os.pread(fd, len(block), at) != block:
                return at
    return None


class SourceSamples:
    """A source's sampled blocks, read once for many compares against it (a fan-out's
    clones): the source is stopped and held by the flow that compares, so its blocks
    stay as read. Each clone's blocks are still read, through its own device."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: dict[tuple[str, int], list[bytes]] = {}

    def blocks(self, path: str, *, size: int) -> list[bytes]:
        with self._lock:  # the first compare reads; the others wait for it, not read again
            key = (path, size)
            if key not in self._read:
                self._read[key] = sampled(path, size=size)
            return self._read[key]

    def forget(self, path: str) -> None:
        with self._lock:
            for key in [k for k in self._read if k[0] == path]:
                del self._read[key]


#: sources a compare named `once` for: their blocks are read by the first compare only
SOURCES = SourceSamples()


def _prefetch(fd: int, places: list[int]) -> None:
    """Ask for every sampled block at once: the device reads them in parallel, where
    one read after another waits for each (a sampled compare of a cold 4 GiB disk
    is 4096 reads)."""
    for offset in places:
        os.posix_fadvise(fd, offset, SAMPLE_BYTES, os.POSIX_FADV_WILLNEED)


def _full(a: int, b: int, size: int) -> int | None:
    for offset in range(0, size, FULL_CHUNK):
        length = min(FULL_CHUNK, size - offset)
        left, right = os.pread(a, length, offset), os.pread(b, length, offset)
        if left != right:
            # a short read (a device smaller than `size`) differs where it ends
            pairs = enumerate(zip(left, right, strict=False))
            return offset + next((i for i, (x, y) in pairs if x != y), min(len(left), len(right)))
    return None


def fingerprint(path: str, *, size: int) -> str:
    """The sampled blocks of a disk's first `size` bytes, as JSON: where, and their digests."""
    stride = stride_for(size)
    with open(path, "rb", buffering=0) as f:
        digests = "".join(
            _digest(f.fileno(), at, min(SAMPLE_BYTES, size - at)) for at in offsets(size, stride)
        )
    return json.dumps({"size": size, "block": SAMPLE_BYTES, "stride": stride, "sha256": digests})


def samples(recorded: str) -> int:
    """How many blocks a fingerprint holds."""
    return len(json.loads(recorded)["sha256"]) // (2 * DIGEST_BYTES)


def unlike(path: str, recorded: str) -> int | None:
    """The first sampled offset where `path` differs from a fingerprint, or None."""
    fp = json.loads(recorded)
    size, block, width = fp["size"], fp["block"], 2 * DIGEST_BYTES
    with open(path, "rb", buffering=0) as f:
        for i, at in enumerate(offsets(size, fp["stride"])):
            if _digest(f.fileno(), at, min(block, size - at)) != fp["sha256"][i * width :][:width]:
                return at
    return None


def _digest(fd: int, offset: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, offset)).hexdigest()[: 2 * DIGEST_BYTES]


def _measure(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    path, mode = data["path"], data["mode"]
    found: Data = {"device": device_size(path, mode)}
    if mode == spec.Mode.FILESYSTEM:
        found["filesystem"] = filesystem_size(path)
    return found


def _measure_vm_disk(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    """`measure` for a running VM's disk, where the launcher published it on its node."""
    with vm_actions.launcher(env, node_name=data["node"], driver=data["driver"]) as on:
        entry = on.disk_record(data["vm"], data["target"])
    path = entry.publish_path
    if not entry.block:
        path = str(pathlib.Path(path) / diskfile.IMAGE_NAME)
    if not os.path.exists(path):
        return {"device": None}  # published on another machine: nothing to see from here
    return _measure(env, {"path": path, "mode": data["mode"]}, flow_id, seq)


def _require(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    path, size = data["path"], data["size"]
    have = devcheck.size_of(path)
    if have < size:
        _missing(env, data, f"{data['what']}: the new volume holds {have} bytes, the disk {size}")
    # A sparse image file can claim more than its filesystem could ever hold.
    if data.get("mode") == spec.Mode.FILESYSTEM and (room := filesystem_size(path)) < size:
        _missing(env, data, f"{data['what']}: the new volume's filesystem holds {room} bytes")
    return {}


def _compare(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    what, size = data["what"], data["size"]
    have = devcheck.size_of(data["dst"])
    if have < size:
        _missing(env, data, f"{what}: the new volume holds {have} bytes, the disk {size}")
    full = bool(data.get("full"))
    if data.get("once") and not full:
        at = first_unlike(SOURCES.blocks(data["src"], size=size), data["dst"], size=size)
    else:
        at = first_difference(data["src"], data["dst"], size=size, full=full)
    if at is not None:
        how = "compared in full" if full else "sampled"
        _missing(env, data, f"{what}: the new volume differs from its source at byte {at} ({how})")
    found: Data = {"compared": "full" if full else f"{len(offsets(size))} samples"}
    if data.get("fingerprint"):
        found["fingerprint"] = fingerprint(data["dst"], size=size)
    return found


def _match(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    at = unlike(data["path"], data["fingerprint"])
    if at is not None:
        _missing(
            env,
            data,
            f"{data['what']}: the restored volume differs at byte {at} from the snapshot's "
            "data as it was taken (sampled)",
        )
    return {"compared": f"{samples(data['fingerprint'])} samples of the snapshot as taken"}


def _missing(env: context.Env, data: Data, message: str) -> None:
    records.forget_caps(env.store, data["driver"])
    raise EffectMissing(
        f"{message}: driver {data['driver']!r} answered {data['answer']} but did not do it",
        hint="the flow rolls back; the next operation probes the driver again and takes "
        "the fallback, so retry it",
    )


DO = {
    "measure": _measure,
    "measure_vm_disk": _measure_vm_disk,
    "require": _require,
    "compare": _compare,
    "match": _match,
}
