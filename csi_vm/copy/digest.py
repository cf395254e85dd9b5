"""Verification: checksums of the logical content of source and target.

The content is hashed in fixed chunks of the address space, and the chunk
digests are hashed again (a two-level hash): a chunk that is entirely a hole
gets the digest of zeros without being read, so a sparse 64 GiB image costs
only its data, while allocation differences (a hole on one side, written
zeros on the other) do not change the result.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

from csi_vm import errors
from csi_vm.copy import failures, kernel, model, plan, pool

#: 4 MiB chunks: large enough that hashing, not Python, sets the pace
CHUNK = 4 * 1024 * 1024
_DIGEST_SIZE = 32


def check(source: pathlib.Path, target: pathlib.Path, *, size: int, options: model.Options) -> None:
    """Raise DataSafetyError unless both hold the same first ``size`` bytes."""
    with _Side(source, size=size) as src, _Side(target, size=size) as dst:
        meter = model.Meter(options, phase=model.Phase.VERIFY, total=src.todo + dst.todo)
        want = src.digest(options=options, meter=meter)
        got = dst.digest(options=options, meter=meter)
    if want != got:
        raise errors.DataSafetyError(
            f"verification failed: {target} differs from {source} "
            f"(blake2b {got.hex()[:16]}… instead of {want.hex()[:16]}…)",
            hint="the target is not a faithful copy; do not use it, and check the storage",
        )


class _Side:
    """One file or device to hash: the chunks that hold data, then their digests."""

    def __init__(self, path: pathlib.Path, *, size: int) -> None:
        self.path = path
        self.size = size
        self.fd = -1
        self.pieces: list[plan.Extent] = []

    def __enter__(self) -> _Side:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            extents = list(kernel.data_extents(self.fd, size=self.size))
        except OSError as err:
            self.__exit__()
            raise failures.translate(err, path=self.path, doing="verifying") from err
        slots = sorted(plan.touched_chunks(extents, chunk=CHUNK))
        self.pieces = [(i * CHUNK, min(CHUNK, self.size - i * CHUNK)) for i in slots]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def todo(self) -> int:
        return plan.total(self.pieces)

    def digest(self, *, options: model.Options, meter: model.Meter) -> bytes:
        digests = _zero_digests(self.size)

        def work(piece: plan.Extent) -> int:
            # Each piece owns one slot of the list: no two threads share one.
            digests[piece[0] // CHUNK] = _hash_range(self.fd, offset=piece[0], length=piece[1])
            return piece[1]

        try:
            pool.run(self.pieces, work, options=options, meter=meter)
        except OSError as err:
            raise failures.translate(err, path=self.path, doing="verifying") from err
        return hashlib.blake2b(b"".join(digests), digest_size=_DIGEST_SIZE).digest()


def _zero_digests(size: int) -> list[bytes]:
    """Digests of every chunk as if all were holes; data chunks are replaced."""
    full, tail = divmod(size, CHUNK)
    zero = hashlib.blake2b(bytes(CHUNK), digest_size=_DIGEST_SIZE).digest()
    digests = [zero] * full
    if tail:
        digests.append(hashlib.blake2b(bytes(tail), digest_size=_DIGEST_SIZE).digest())
    return digests


def _hash_range(fd: int, *, offset: int, length: int) -> bytes:
    buf = bytearray(length)
    kernel.read_into(fd, buf, offset=offset, length=length)
    # hashlib drops the GIL for large buffers, so chunks hash in parallel.
    return hashlib.blake2b(buf, digest_size=_DIGEST_SIZE).digest()
