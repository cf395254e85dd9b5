"""Which clone to make next, from which source, in a fan-out: pure scheduling.

Native clones and restores all read the one source (or its one snapshot), so
only the bound on parallel work limits them. Host copies read a disk each; to
keep one disk from serving every copy, a copy may read any clone already made,
one copy per source at a time: 1 copy, then 2, 4, 8... up to the bound (a tree).
"""

from __future__ import annotations

import collections
import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class Job:
    index: int  # the {i} of the name template
    target: str
    source: str  # the VM the copy reads (the origin, or a clone already made)


class Scheduler:
    def __init__(
        self,
        *,
        origin: str,
        todo: list[tuple[int, str]],
        made: list[str],
        parallel: int,
        tree: bool,
    ) -> None:
        self._todo = collections.deque(todo)
        self._tree = tree
        self._parallel = parallel
        self._running = 0
        # Without a tree the origin is never used up: it serves every job.
        self._idle = collections.deque([origin, *(made if tree else [])])
        self._origin = origin

    def next(self) -> Job | None:
        """The next job to start now, or None until one in flight ends (or all are started)."""
        if not self._todo or self._running >= self._parallel or not self._idle:
            return None
        index, target = self._todo.popleft()
        source = self._idle.popleft() if self._tree else self._origin
        self._running += 1
        return Job(index=index, target=target, source=source)

    def finished(self, job: Job, *, made: bool) -> None:
        """A job ended: its source is free again, and a clone made can now be read."""
        self._running -= 1
        if self._tree:
            self._idle.append(job.source)
            if made:
                self._idle.append(job.target)

    @property
    def busy(self) -> bool:
        return self._running > 0

    @property
    def left(self) -> int:
        return len(self._todo)
