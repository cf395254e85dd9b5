"""What a copy is asked to do and what it reports back."""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import threading
from collections.abc import Callable

from csi_vm import errors


class Phase(enum.StrEnum):
    COPY = "copy"
    VERIFY = "verify"


#: progress callback: (phase, bytes done, bytes to do in the phase); called
#: from one thread at a time. A copy's total is the source's allocated bytes.
Progress = Callable[[Phase, int, int], None]
#: test hook run on the committed target before verification
Hook = Callable[[pathlib.Path], None]


class Format(enum.StrEnum):
    RAW = "raw"
    QCOW2 = "qcow2"


class Method(enum.StrEnum):
    """How the bytes moved, fastest first."""

    REFLINK = "reflink"
    COPY_FILE_RANGE = "copy_file_range"
    READWRITE = "readwrite"
    #: a conversion to or from qcow2, done by qemu-img
    QEMU_IMG = "qemu-img"
    #: the source held no data: only the size was set
    NONE = "none"


class Interrupted(errors.OperationFailed):
    """The caller cancelled the copy; a target file it created was removed."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    output: Format = Format.RAW
    #: replace an existing target file, or write over a block device
    overwrite: bool = False
    #: the target block device reads as zeros (a fresh CSI volume): skip zeroing it
    target_zeroed: bool = False
    verify: bool = False
    #: a target file is made at least this long: a copy into a larger disk,
    #: whose part past the image reads as zeros. A device keeps its own size.
    min_size: int = 0
    #: parallel I/O threads; os.pread/pwrite and copy_file_range release the GIL
    workers: int = 4
    progress: Progress | None = None
    cancel: threading.Event | None = None
    #: for tests only: runs between the copy and the verification
    before_verify: Hook | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Result:
    source: pathlib.Path
    target: pathlib.Path
    source_format: Format
    target_format: Format
    method: Method
    #: logical size of the image: what a guest sees
    size: int
    #: bytes the source holds as data (the rest are holes or zeros)
    allocated: int
    #: bytes written or cloned to the target
    copied: int
    #: wall time of the whole call, verification included
    seconds: float
    verified: bool
    #: the part of ``seconds`` spent verifying
    verify_seconds: float = 0.0

    @property
    def throughput(self) -> float:
        """Allocated bytes per second of the copy itself (verification excluded)."""
        copying = self.seconds - self.verify_seconds
        return self.allocated / copying if copying > 0 else 0.0


def cancelled(options: Options) -> bool:
    return options.cancel is not None and options.cancel.is_set()


class Meter:
    """Adds up finished bytes of one phase and reports them."""

    def __init__(self, options: Options, *, phase: Phase, total: int) -> None:
        self._progress = options.progress
        self.phase = phase
        self.total = total
        self.done = 0
        self.add(0)

    def add(self, count: int) -> None:
        self.done += count
        if self._progress is not None:
            self._progress(self.phase, self.done, self.total)
