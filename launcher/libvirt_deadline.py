"""What bounds a libvirt call: keepalive on an event loop thread, and a deadline per call.

libvirt's client waits for the daemon's answer with no timeout of its own, so
a libvirtd that is frozen (SIGSTOP, a stuck host) or wedged on one domain
would hang the caller forever. Two things bound every call:

- keepalive: with libvirt's default event loop running in a thread, the
  client pings libvirtd and closes the connection when the pings go
  unanswered. Every call waiting on that connection then fails, long ones
  (a migration, which may rightly last minutes) included.
- a deadline per call: the call runs in a worker thread and the caller
  waits for it at most `limit` seconds. This catches a daemon that still
  answers pings but not the call.

`libvirt_conn` is the only user; it passes the libvirt module in, so this
module never imports libvirt itself.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_loop_lock = threading.Lock()
#: the process that runs the event loop thread (a forked child needs its own)
_loop_pid: int | None = None


def start_event_loop(libvirt: Any) -> None:
    """Once per process, before the first connection: run libvirt's event loop in a thread.

    libvirt requires the implementation to be registered before a connection
    is opened, or that connection cannot use keepalive. The thread is a
    daemon thread: it never keeps the interpreter from exiting.
    """
    global _loop_pid  # noqa: PLW0603 - one loop per process, by libvirt's design
    with _loop_lock:
        if _loop_pid == os.getpid():
            return
        if _loop_pid is None:
            libvirt.virEventRegisterDefaultImpl()
        # after a fork the registration is inherited, the thread is not
        _loop_pid = os.getpid()
        thread = threading.Thread(
            target=_run_loop, args=(libvirt,), name="libvirt-events", daemon=True
        )
        thread.start()


def _run_loop(libvirt: Any) -> None:
    while True:
        # -1 only when the loop itself is broken; nothing to report it to
        libvirt.virEventRunDefaultImpl()


class Overdue(Exception):  # not of the csi-vm tree: the caller maps it
    """The call did not return within its deadline; it goes on in its worker thread."""


@dataclasses.dataclass
class _Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None
    done: bool = False
    abandoned: bool = False


def bounded(
    func: Callable[..., T],
    args: tuple[Any, ...],
    *,
    limit: float | None,
    late: Callable[[T | None], None] | None = None,
) -> T:
    """`func(*args)`, or Overdue once `limit` seconds have passed (None: no deadline).

    `late` is called, in the worker, with the value (None after an error)
    of a call that ended after its caller gave up: e.g. to close a
    connection that was opened too late to be used.
    """
    if limit is None:
        return func(*args)
    outcome: _Outcome[T] = _Outcome()
    lock = threading.Lock()
    finished = threading.Event()

    def work() -> None:
        try:
            outcome.value = func(*args)
        except BaseException as err:  # handed to the waiting thread
            outcome.error = err
        with lock:
            outcome.done = True
            abandoned = outcome.abandoned
        finished.set()
        if abandoned and late is not None:
            late(outcome.value)

    name = f"libvirt-{getattr(func, '__name__', 'call')}"
    threading.Thread(target=work, name=name, daemon=True).start()
    finished.wait(limit)
    with lock:
        if not outcome.done:
            outcome.abandoned = True
            raise Overdue
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]  # set: done without error
