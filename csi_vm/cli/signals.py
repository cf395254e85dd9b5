"""Run work in a thread so that SIGINT/SIGTERM ask it to stop instead of killing it.

The work checks the cancel event between steps and always cleans up; the main
thread keeps waiting for that cleanup, however many signals arrive.
"""

from __future__ import annotations

import signal
import threading
import types
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: exit status after an interrupt, as shells report a SIGINT death
INTERRUPTED = 130


def run_cancellable(work: Callable[[threading.Event], T]) -> tuple[T, bool]:
    """Run ``work(cancel)``; returns its result and whether a signal arrived."""
    cancel = threading.Event()
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = work(cancel)
        except BaseException as err:
            box["error"] = err

    def on_signal(signum: int, frame: types.FrameType | None) -> None:
        cancel.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=target, name="csi-vm-work", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["result"], cancel.is_set()  # type: ignore[return-value]
