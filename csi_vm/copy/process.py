"""Running a child process: the copy engine's only subprocess call.

Output is read as it comes, so a caller can follow a progress meter on
standard output; a cancel kills the child (which we started) and waits for it.
"""

from __future__ import annotations

import dataclasses
import os
import selectors
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

#: how often a waiting read checks for a cancel, in seconds
_POLL = 0.2
#: stderr kept from a chatty child (qemu-img check prints one line per bad cluster)
_STDERR_LIMIT = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class Cancelled(Exception):
    """The cancel event was set; the child was killed."""


class Runner(Protocol):
    def __call__(
        self,
        args: Sequence[str],
        *,
        on_output: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Completed: ...


def run(
    args: Sequence[str],
    *,
    on_output: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> Completed:
    """Run ``args`` (never through a shell); FileNotFoundError if the tool is missing."""
    proc = subprocess.Popen(
        list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        out, err = _collect(proc, on_output=on_output, cancel=cancel)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return Completed(returncode, out, err)


def _collect(
    proc: subprocess.Popen[bytes],
    *,
    on_output: Callable[[str], None] | None,
    cancel: threading.Event | None,
) -> tuple[str, str]:
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            if cancel is not None and cancel.is_set():
                raise Cancelled
            for key, _ in sel.select(_POLL):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                if key.fd == proc.stdout.fileno() and on_output is not None:
                    on_output(chunk.decode(errors="replace"))
                buf = buffers[key.fd]
                if len(buf) < _STDERR_LIMIT:
                    buf += chunk
    out, err = (bytes(b).decode(errors="replace") for b in buffers.values())
    return out, err
