"""Image files in the state dir: crash-safe creation, growth, removal, orphan sweep.

Layout: <state>/volumes/<volume id>.img and <state>/snapshots/<snapshot id>.img.

A new image is written under a temporary name, renamed into place and
fsynced (file and directory), and only then does the caller commit its
database row. Until that commit the
creator holds an flock on the file. Startup removes temporary files and images
without rows, skipping any file still locked, so a sibling driver process
(--shared) never loses an image it is about to commit.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import pathlib
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

_TEMP_PREFIX = ".tmp-"
_SUFFIX = ".img"
#: With --shared, a temp file younger than this may belong to a sibling that has
#: created it but not yet locked it; leave it for a later sweep.
SHARED_SWEEP_MIN_AGE_S = 30.0


class NewImage:
    """A file being created; `commit_file()` puts it in place, `discard()` removes it."""

    def __init__(self, fd: int, *, temp: pathlib.Path, final: pathlib.Path) -> None:
        self.fd = fd
        self.temp = temp
        self.final = final
        self._renamed = False

    def commit_file(self) -> None:
        """Put the file under its final name, durably, before its row is committed.

        Renaming before the fsync lets one journal commit cover the file and its
        directory entry (the directory fsync then finds little to do). Safe: until
        the caller commits the row, an image under its final name is a leftover
        the startup sweep removes, exactly like a temp file.
        """
        os.rename(self.temp, self.final)
        self._renamed = True
        os.fsync(self.fd)
        _fsync_dir(self.final.parent)

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.final if self._renamed else self.temp)


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageStore:
    """The two image directories of one state dir."""

    def __init__(self, root: pathlib.Path, *, shared: bool) -> None:
        self.root = root
        self.volumes = root / "volumes"
        self.snapshots = root / "snapshots"
        self._shared = shared
        for directory in (self.volumes, self.snapshots):
            directory.mkdir(parents=True, exist_ok=True)

    def volume_path(self, volume_id: str) -> pathlib.Path:
        return self.volumes / f"{volume_id}{_SUFFIX}"

    def snapshot_path(self, snapshot_id: str) -> pathlib.Path:
        return self.snapshots / f"{snapshot_id}{_SUFFIX}"

    @contextlib.contextmanager
    def create(self, final: pathlib.Path) -> Iterator[NewImage]:
        """Yield a locked, empty temp file; on an exception it is removed again.

        The caller fills it, calls `commit_file()`, then commits its row inside
        the `with` block; the lock is released when the block ends.
        """
        temp = final.with_name(_TEMP_PREFIX + final.name)
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        image = NewImage(fd, temp=temp, final=final)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield image
        except BaseException:
            image.discard()
            raise
        finally:
            os.close(fd)

    @staticmethod
    def grow(path: pathlib.Path, size: int) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
                os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def remove(path: pathlib.Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def sweep(self, *, is_known: Callable[[str], bool]) -> list[pathlib.Path]:
        """Remove temp files and images without a row; returns what was removed.

        `is_known(object_id)` is asked again after the file's lock is taken, so
        an image whose creator committed in the meantime is kept.
        """
        removed = []
        for directory in (self.volumes, self.snapshots):
            for entry in os.scandir(directory):
                path = pathlib.Path(entry.path)
                if self._is_leftover(path, is_known) and self._remove_unlocked(path, is_known):
                    removed.append(path)
        return removed

    def _is_leftover(self, path: pathlib.Path, is_known: Callable[[str], bool]) -> bool:
        if path.name.startswith(_TEMP_PREFIX):
            young = time.time() - path.stat().st_mtime < SHARED_SWEEP_MIN_AGE_S
            return not (self._shared and young)
        return path.name.endswith(_SUFFIX) and not is_known(path.name.removesuffix(_SUFFIX))

    @staticmethod
    def _remove_unlocked(path: pathlib.Path, is_known: Callable[[str], bool]) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                return False  # its creator is still at work
            raise
        try:
            name = path.name.removesuffix(_SUFFIX)
            if not path.name.startswith(_TEMP_PREFIX) and is_known(name):
                return False
            os.unlink(path)
            log.info("removed leftover image %s", path.name)
            return True
        finally:
            os.close(fd)
