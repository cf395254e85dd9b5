"""Run copy work over pieces in a few threads, with progress and cancellation.

Threads, not processes: every piece's time is spent in system calls
(copy_file_range, pread, pwrite, ioctl) that release the GIL.
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Callable, Sequence

from csi_vm.copy import model, plan

#: bytes queued ahead of the workers: what a prefetch may read ahead, and the
#: most work a cancel or failure drops. 128 MiB keeps a disk's queue deep
#: while using little of the page cache.
AHEAD = 128 * 1024 * 1024
#: pieces queued per worker at most, whatever their size
_QUEUE_PER_WORKER = 64


def run(
    pieces: Sequence[plan.Extent],
    work: Callable[[plan.Extent], int],
    *,
    options: model.Options,
    meter: model.Meter,
    on_queue: Callable[[plan.Extent], None] | None = None,
) -> int:
    """Apply ``work`` to every piece; returns the sum of what ``work`` returned.

    The meter counts each piece's length once it is done. The first failure,
    or a cancel, stops queueing; pieces already running finish first, so
    nothing writes to the target once this returns or raises. ``on_queue``
    sees each piece when it is queued, up to AHEAD bytes before it is worked on.
    """
    result = queued = 0
    todo = collections.deque(pieces)
    workers = max(1, options.workers)
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="copy") as pool:
        running: dict[concurrent.futures.Future[int], plan.Extent] = {}
        try:
            while todo or running:
                if model.cancelled(options):
                    raise model.Interrupted("copy interrupted")
                while todo and (not running or queued < AHEAD):
                    if len(running) >= workers * _QUEUE_PER_WORKER:
                        break
                    piece = todo.popleft()
                    if on_queue is not None:
                        on_queue(piece)
                    running[pool.submit(work, piece)] = piece
                    queued += piece[1]
                finished, _ = concurrent.futures.wait(
                    running, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in finished:
                    piece = running.pop(future)
                    queued -= piece[1]
                    result += future.result()
                    meter.add(piece[1])
        finally:
            for future in running:
                future.cancel()
    return result
