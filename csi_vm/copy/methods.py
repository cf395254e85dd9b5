"""The three ways of moving one piece, fastest first, and the step down between them.

- reflink (FICLONERANGE): the target shares the source's blocks; nothing is
  copied. Both files on one filesystem that supports it (xfs with reflink=1,
  btrfs).
- copy_file_range: the kernel copies without passing data through user space;
  between files only.
- readwrite: pread into a buffer, skip all-zero blocks, pwrite the rest. Works
  for everything, including block devices on either side. A block device
  target is written with O_DIRECT where the copy has it open so (``direct_fd``)
  and the write is aligned: a buffered write to a loop device is cached twice,
  in the device's page cache and in its backing file's, and ran at a quarter
  of the speed of a direct one.

A piece that gets :class:`kernel.NotSupported` steps the copier down to the
next method and is redone with it; the method reported is the last one used.
"""

from __future__ import annotations

import errno
import threading

from csi_vm.copy import kernel, model, plan

_ORDER = (model.Method.REFLINK, model.Method.COPY_FILE_RANGE, model.Method.READWRITE)


def candidates(*, same_filesystem: bool, files: bool) -> list[model.Method]:
    if not files:
        return [model.Method.READWRITE]
    if same_filesystem:
        return list(_ORDER)
    return [model.Method.COPY_FILE_RANGE, model.Method.READWRITE]


class Copier:
    """Copies pieces from ``src_fd`` to the same offsets of ``dst_fd``; thread-safe.

    ``sparse``: all-zero blocks may be skipped, because the target is a file
    (holes read as zeros) or a block device known to read as zeros. Otherwise
    the target may hold old data, and every byte of a piece is set.
    """

    def __init__(
        self,
        *,
        src_fd: int,
        dst_fd: int,
        methods: list[model.Method],
        sparse: bool,
        piece: int,
        direct_fd: int | None = None,
    ) -> None:
        self.src_fd = src_fd
        self.dst_fd = dst_fd
        #: the target opened with O_DIRECT too, for aligned writes; None: buffered only
        self.direct_fd = direct_fd
        self.sparse = sparse
        self._methods = methods
        self._piece = piece
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def method(self) -> model.Method:
        return self._methods[0]

    def copy(self, extent: plan.Extent) -> int:
        """Copy one piece; returns the bytes written or cloned."""
        while True:
            method = self.method
            try:
                return self._copy_with(method, extent)
            except kernel.NotSupported:
                self._step_down(method)

    def prefetch(self, extent: plan.Extent) -> None:
        """Start reading a piece that is queued; a clone reads nothing."""
        if self.method is not model.Method.REFLINK:
            kernel.prefetch(self.src_fd, offset=extent[0], length=extent[1])

    def clone_whole(self) -> bool:
        """FICLONE the whole file in one call; False when reflink is not possible."""
        if self.method is not model.Method.REFLINK:
            return False
        try:
            kernel.clone_file(self.src_fd, self.dst_fd)
        except kernel.NotSupported:
            self._step_down(model.Method.REFLINK)
            return False
        return True

    def _step_down(self, failed: model.Method) -> None:
        with self._lock:
            # Another thread may already have stepped down past this method.
            if self._methods[0] is failed and len(self._methods) > 1:
                self._methods = self._methods[1:]

    def _copy_with(self, method: model.Method, extent: plan.Extent) -> int:
        offset, length = extent
        if method is model.Method.REFLINK:
            kernel.clone_range(self.src_fd, self.dst_fd, offset=offset, length=length)
            return length
        if method is model.Method.COPY_FILE_RANGE:
            kernel.copy_range(self.src_fd, self.dst_fd, offset=offset, length=length)
            written = length
        else:
            written = self._read_write(offset, length)
        kernel.start_writeback(self.dst_fd, offset=offset, length=length)
        return written

    def _read_write(self, offset: int, length: int) -> int:
        buf, at = self._buffer()
        view = memoryview(buf)[at : at + length]
        kernel.read_into(self.src_fd, view, offset=offset, length=length)
        runs = plan.data_runs(buf, length=length, start=at)
        if not self.sparse:
            return self._overwrite(view, offset=offset, empty=not runs)
        for start, size in runs:
            self._write(view[start : start + size], offset=offset + start)
        return plan.total(runs)

    def _overwrite(self, view: memoryview, *, offset: int, empty: bool) -> int:
        if empty:
            kernel.zero_device_range(self.dst_fd, offset=offset, length=len(view))
            return 0
        self._write(view, offset=offset)
        return len(view)

    def _write(self, data: memoryview, *, offset: int) -> None:
        """Write direct when the target is open so and the write is aligned, else buffered.

        `data` starts aligned: runs begin on ZERO_BLOCK boundaries of an aligned buffer.
        """
        direct = self.direct_fd
        if direct is None or (offset | len(data)) % kernel.DIRECT_ALIGN:
            kernel.write_all(self.dst_fd, data, offset=offset)
            return
        try:
            kernel.write_all(direct, data, offset=offset)
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
            # A device with logical blocks larger than DIRECT_ALIGN: buffered from now on.
            # A direct write that failed EINVAL wrote nothing; the whole range is rewritten.
            self.direct_fd = None
            kernel.write_all(self.dst_fd, data, offset=offset)

    def _buffer(self) -> tuple[bytearray, int]:
        found: tuple[bytearray, int] | None = getattr(self._local, "buf", None)
        if found is None:
            found = self._local.buf = kernel.aligned_buffer(self._piece)
        return found
