"""Per-object try-locks: a second operation on a busy object fails fast (ABORTED).

CSI asks a driver to refuse, not queue, a call that races another call on the
same volume or name; the CO retries with backoff. Shared holders (snapshots
and clones reading a volume) may overlap each other but not an exclusive
holder (delete, expand, stage). Several keys are taken all-or-nothing, so two
operations can never each hold half of what the other needs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator

from csi_vm import errors

_EXCLUSIVE = -1


class KeyedLocks:
    """In-process locks keyed by strings such as 'volume:<id>' or 'volume-name:<name>'."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held: dict[str, int] = {}  # key -> shared holder count, or _EXCLUSIVE

    @contextlib.contextmanager
    def hold(
        self, *, exclusive: Iterable[str] = (), shared: Iterable[str] = (), what: str
    ) -> Iterator[None]:
        """Take every key or none; raises errors.Busy naming `what` when one is taken."""
        ex = tuple(dict.fromkeys(exclusive))
        sh = tuple(k for k in dict.fromkeys(shared) if k not in ex)
        self._acquire(ex, sh, what=what)
        try:
            yield
        finally:
            self._release(ex, sh)

    def _acquire(self, ex: tuple[str, ...], sh: tuple[str, ...], *, what: str) -> None:
        with self._mutex:
            busy = [k for k in ex if k in self._held]
            busy += [k for k in sh if self._held.get(k) == _EXCLUSIVE]
            if busy:
                raise errors.Busy(
                    f"another operation on {what} is in flight", hint="retry with backoff"
                )
            for key in ex:
                self._held[key] = _EXCLUSIVE
            for key in sh:
                self._held[key] = self._held.get(key, 0) + 1

    def _release(self, ex: tuple[str, ...], sh: tuple[str, ...]) -> None:
        with self._mutex:
            for key in ex:
                del self._held[key]
            for key in sh:
                count = self._held[key] - 1
                if count:
                    self._held[key] = count
                else:
                    del self._held[key]
