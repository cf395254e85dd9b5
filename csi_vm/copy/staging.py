"""Where a copy writes, so that a failed copy leaves no partial target behind.

A file target is written as a temporary file beside it and renamed into place
only after it is flushed: until then an existing target keeps its old content,
and on failure the temporary file is removed. A block device is written in
place (there is nothing to rename); it is opened exclusively, so a device that
is mounted is refused instead of corrupted.

Only a process killed outright (kill -9, power loss) can leave a temporary
file behind: it is named ``.NAME.partial-HOST-PID-XXXXXXXX`` beside the target,
and the next copy to the same target removes those whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
from collections.abc import Iterator

from csi_vm import errors
from csi_vm.copy import endpoints, failures, kernel

#: a new image file is private: it holds a guest's whole disk
NEW_FILE_MODE = 0o600


class Staged:
    """The open object a copy writes: ``path`` and ``fd``; a device also as ``direct_fd``."""

    def __init__(
        self, *, dst: endpoints.Endpoint, path: pathlib.Path, fd: int, direct_fd: int | None = None
    ) -> None:
        self.dst = dst
        self.path = path
        self.fd = fd
        #: the device opened with O_DIRECT as well (see methods.Copier); None for a file
        self.direct_fd = direct_fd
        self.committed = False
        self._flushed = False

    @property
    def is_file(self) -> bool:
        return self.dst.kind is endpoints.Kind.FILE

    def flush(self, *, for_verify: bool = False) -> None:
        """Make what was written durable; before a verification, also drop it
        from the cache, so that the verification reads back what the medium
        holds. Without one the drop is skipped: it took a tenth of a 1 GiB copy."""
        try:
            kernel.flush(self.fd)
            if for_verify:
                kernel.drop_cache(self.fd)
        except OSError as err:
            raise failures.translate(err, path=self.dst.path, doing="flushing") from err
        self._flushed = True

    def extend_to(self, size: int) -> None:
        """Lengthen a target file to ``size`` bytes with a hole; a longer file or a device stays."""
        if not self.is_file:
            return
        try:
            if os.fstat(self.fd).st_size < size:
                os.ftruncate(self.fd, size)
        except OSError as err:
            raise failures.translate(err, path=self.dst.path, doing="sizing") from err

    def commit(self) -> None:
        """Make the copy durable, then visible under the target's name."""
        if not self._flushed:
            self.flush()
        try:
            if self.is_file:
                os.rename(self.path, self.dst.path)
                _flush_directory(self.dst.path.parent)
        except OSError as err:
            raise failures.translate(err, path=self.dst.path, doing="renaming onto") from err
        self.committed = True


@contextlib.contextmanager
def open_target(dst: endpoints.Endpoint, *, size: int) -> Iterator[Staged]:
    """Open the target for a copy of ``size`` bytes; discard it unless committed."""
    if dst.kind is endpoints.Kind.BLOCK:
        staged = _open_device(dst, size=size)
    else:
        staged = _create_file(dst, size=size)
    try:
        yield staged
    finally:
        os.close(staged.fd)
        if staged.direct_fd is not None:
            os.close(staged.direct_fd)
        if staged.is_file and not staged.committed:
            with contextlib.suppress(FileNotFoundError):
                staged.path.unlink()


def _open_device(dst: endpoints.Endpoint, *, size: int) -> Staged:
    if dst.size < size:
        raise errors.OutOfRange(
            f"target device {dst.path} holds {dst.size} bytes, the image needs {size}",
            hint="use a device at least as large as the image",
        )
    try:
        # O_EXCL on a block device: fail with EBUSY if it is mounted or claimed.
        fd = os.open(dst.path, os.O_RDWR | os.O_EXCL | os.O_CLOEXEC)
    except OSError as err:
        raise failures.translate(err, path=dst.path, doing="opening target") from err
    return Staged(dst=dst, path=dst.path, fd=fd, direct_fd=_open_direct(dst.path))


def _open_direct(path: pathlib.Path) -> int | None:
    """The device again, with O_DIRECT, or None where it refuses that (writes stay buffered).

    Not O_EXCL: the first open holds the claim. One fsync of the first open flushes both.
    """
    try:
        return os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        return None


def _partial_prefix(target: pathlib.Path) -> str:
    # The host is part of the name because a target directory may be shared
    # (NFS): only this host can tell whether one of its processes is alive.
    # uname's node name is what socket.gethostname() returns on Linux, without
    # importing socket at every copy's start.
    return f".{target.name}.partial-{os.uname().nodename}-"


def _create_file(dst: endpoints.Endpoint, *, size: int) -> Staged:
    sweep_stale(dst.path)
    temp = dst.path.with_name(f"{_partial_prefix(dst.path)}{os.getpid()}-{_token()}")
    mode = _kept_mode(dst)
    try:
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    except OSError as err:
        raise failures.translate(err, path=dst.path, doing="creating") from err
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow a kept mode
        os.ftruncate(fd, size)
    except OSError as err:
        os.close(fd)
        temp.unlink()
        raise failures.translate(err, path=dst.path, doing="sizing") from err
    return Staged(dst=dst, path=temp, fd=fd)


def _token() -> str:
    # secrets.token_hex is os.urandom in hex; secrets would import hashlib and
    # OpenSSL into every copy's start-up.
    return os.urandom(4).hex()


def sweep_stale(target: pathlib.Path) -> list[pathlib.Path]:
    """Remove the temporary files of earlier copies to ``target`` whose process died.

    A copy still running (its process alive, even if it is another csi-vm)
    keeps its file; so does a file of another host. Returns what was removed.
    """
    prefix = _partial_prefix(target)
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []  # no directory yet: nothing to sweep; creating will say why
    for entry in entries:
        pid = _owner(entry.name, prefix)
        if pid is None or _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed.append(pathlib.Path(entry.path))
    return removed


def _owner(name: str, prefix: str) -> int | None:
    if not name.startswith(prefix):
        return None
    pid, _, _ = name[len(prefix) :].partition("-")
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _kept_mode(dst: endpoints.Endpoint) -> int:
    """Replacing a file keeps its permissions; a new file gets NEW_FILE_MODE."""
    if not dst.exists:
        return NEW_FILE_MODE
    try:
        return stat.S_IMODE(dst.path.stat().st_mode)
    except OSError:
        return NEW_FILE_MODE


def _flush_directory(directory: pathlib.Path) -> None:
    """The rename itself is only durable once the directory is flushed."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
