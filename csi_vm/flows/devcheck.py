"""Published disks that lost what is behind them: a host copy must not trust them.

A block volume's device node can stay in place while its backing goes: a
loop device detached by someone else reads as an empty device, one whose
backing file was truncated and resized (`losetup -c`) ends early, a LUN
unmapped by the storage reads as nothing. The copy engine sees only paths,
so a failure deep inside it names an attach directory; the flow knows which
VM disk that is. `checked_copy` checks both ends against the volume's size
before and after the copy, and makes every error name the disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from csi_vm import errors

_LOST = "its device lost its backing: a loop device detached or its file truncated?"


def size_of(path: str) -> int:
    """Bytes readable at `path`: a device's size, a file's length (0 when it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        # SEEK_END gives a block device's size as well as a file's, no ioctl needed
        return os.lseek(fd, 0, os.SEEK_END)
    except OSError:
        return 0
    finally:
        os.close(fd)


def require_size(path: str, *, size: int, what: str, role: str) -> None:
    """Refuse an end of a copy that holds less than its volume: it is not that volume now."""
    have = size_of(path)
    if have < size:
        raise errors.OperationFailed(
            f"{what}: the {role} holds {have} bytes, the volume {size}",
            hint=f"{_LOST} The operation rolls back; retry it when the volume is whole again",
        )


@contextlib.contextmanager
def checked_copy(*, what: str, ends: dict[str, tuple[str, int]]) -> Iterator[None]:
    """Check `ends` (role -> (path, size)) around a copy; its errors name `what`.

    After a failure the ends are checked first: "the target holds 1048576
    bytes" says more than the copy's own "no space left" on a shrunk device.
    After success too, so that a copy that finished onto a device which lost
    its backing meanwhile is not reported as done.
    """
    _check(what, ends)
    try:
        yield
    except errors.CsiVmError as err:
        _check(what, ends, cause=err)
        raise _named(err, what) from err
    _check(what, ends)


def _check(
    what: str, ends: dict[str, tuple[str, int]], *, cause: errors.CsiVmError | None = None
) -> None:
    for role, (path, size) in ends.items():
        try:
            require_size(path, size=size, what=what, role=role)
        except errors.OperationFailed as lost:
            if cause is not None:
                raise lost from cause
            raise


def _named(err: errors.CsiVmError, what: str) -> errors.CsiVmError:
    """The same kind of error, its message prefixed with the disk (callers key on the class)."""
    if err.message.startswith(f"{what}: "):
        return err
    return type(err)(f"{what}: {err.message}", hint=err.hint)
