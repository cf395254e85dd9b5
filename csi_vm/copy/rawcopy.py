"""Raw to raw: copy only the source's data, by the fastest method that works.

The target keeps the source's logical size; a file is lengthened to
``min_size`` when that is larger. A file target stays sparse: holes and
all-zero blocks are never written. A block device target may hold old data,
so by default the source's holes are zeroed on it (unmap-style where the
device allows, see ``kernel.zero_device_range``) and pieces with data are
written whole; only with ``target_zeroed`` (a fresh volume that reads as
zeros) are holes and zero blocks skipped there too. Bytes of a larger device
past the image's end are not touched.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import time
from collections.abc import Iterator

from csi_vm.copy import endpoints, failures, kernel, methods, model, plan, pool, staging

#: one unit of parallel work, and the read buffer of each worker: big enough
#: that system-call overhead is small, small enough for prompt progress
PIECE = 8 * 1024 * 1024
#: holes are zeroed on a device in steps of this size, checking for a cancel
_ZERO_STEP = 1024 * 1024 * 1024


def copy(
    src: endpoints.Endpoint, dst: endpoints.Endpoint, *, options: model.Options
) -> model.Result:
    started = time.monotonic()
    size = src.size
    with _open_source(src) as src_fd:
        extents = _extents(src, src_fd)
        with staging.open_target(dst, size=size) as out:
            copier = methods.Copier(
                src_fd=src_fd,
                dst_fd=out.fd,
                direct_fd=_direct(out, extents),
                methods=_candidates(src, dst),
                sparse=out.is_file or options.target_zeroed,
                piece=PIECE,
            )
            try:
                if not copier.sparse:
                    _zero_holes(out.fd, plan.holes(extents, size=size), options=options)
                copied = _transfer(copier, extents, size=size, options=options)
            except OSError as err:
                doing = f"copying {src.path} to"
                raise failures.translate(err, path=dst.path, doing=doing) from err
            out.extend_to(options.min_size)
            out.flush(for_verify=options.verify)
            checked = time.monotonic()
            if options.verify:
                # digest (hashlib, OpenSSL) only for a copy that verifies.
                from csi_vm.copy import digest  # noqa: PLC0415

                if options.before_verify is not None:
                    options.before_verify(out.path)
                digest.check(src.path, out.path, size=size, options=options)
            verify_seconds = time.monotonic() - checked
            out.commit()
    return model.Result(
        source=src.path,
        target=dst.path,
        source_format=model.Format.RAW,
        target_format=model.Format.RAW,
        method=copier.method if extents else model.Method.NONE,
        size=size,
        allocated=plan.total(extents),
        copied=copied,
        seconds=time.monotonic() - started,
        verified=options.verify,
        verify_seconds=verify_seconds,
    )


def _direct(out: staging.Staged, extents: list[plan.Extent]) -> int | None:
    """The target's O_DIRECT descriptor when every extent starts aligned for it.

    Then only a run that ends unaligned (the image's last block) is written
    buffered, and no page of it is also written direct: mixing the two on one
    page could let the cached page, written back later, undo the direct write.
    """
    if any(offset % kernel.DIRECT_ALIGN for offset, _ in extents):
        return None
    return out.direct_fd


def _candidates(src: endpoints.Endpoint, dst: endpoints.Endpoint) -> list[model.Method]:
    files = src.kind is endpoints.Kind.FILE and dst.kind is endpoints.Kind.FILE
    return methods.candidates(same_filesystem=src.filesystem == dst.filesystem, files=files)


@contextlib.contextmanager
def _open_source(src: endpoints.Endpoint) -> Iterator[int]:
    try:
        fd = os.open(src.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise failures.translate(err, path=src.path, doing="opening source") from err
    try:
        yield fd
    finally:
        os.close(fd)


def _extents(src: endpoints.Endpoint, fd: int) -> list[plan.Extent]:
    """Where the source holds data: SEEK_DATA on a file or a loop device's file; all
    of another device, whose zero blocks are found while reading."""
    try:
        return plan.clip(kernel.data_extents(fd, size=src.size), size=src.size)
    except OSError as err:
        raise failures.translate(err, path=src.path, doing="mapping") from err


def _transfer(
    copier: methods.Copier, extents: list[plan.Extent], *, size: int, options: model.Options
) -> int:
    meter = model.Meter(options, phase=model.Phase.COPY, total=plan.total(extents))
    # One FICLONE does the whole job when the file is one extent of data.
    if extents == [(0, size)] and copier.clone_whole():
        meter.add(size)
        return size
    pieces = plan.split(extents, piece=PIECE)
    # The read-ahead advice blocks while the kernel queues the reads (about
    # 10 ms an 8 MiB piece on a virtual disk): given from the thread that
    # hands out pieces it held back the workers, and the copy took 1.4x as
    # long. A thread of its own gives it; advice that fails costs only speed.
    ahead = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prefetch")

    def advise(piece: plan.Extent) -> None:
        ahead.submit(copier.prefetch, piece)

    try:
        return pool.run(pieces, copier.copy, options=options, meter=meter, on_queue=advise)
    finally:
        ahead.shutdown(wait=True, cancel_futures=True)


def _zero_holes(fd: int, holes: list[plan.Extent], *, options: model.Options) -> None:
    for offset, length in plan.split(holes, piece=_ZERO_STEP):
        if model.cancelled(options):
            raise model.Interrupted("copy interrupted while zeroing the target device")
        kernel.zero_device_range(fd, offset=offset, length=length)
