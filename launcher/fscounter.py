"""The agent guest's counter on a real filesystem, seen from the host.

The agent guest (`launcher.agentguest`) mounts ext4 from its first disk and
writes the counter record (`launcher.counter`) into the file `FILE` with
fsync. The host makes that filesystem before the first boot (`make_image`)
and reads it afterwards without mounting it: e2fsprogs' debugfs finds the
file's block, which is read with O_DIRECT like the raw counter block, and
`check` says whether the filesystem is clean or needs its journal replayed.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import tempfile

from csi_vm import errors
from launcher import counter, hostcmd

#: the counter file, at the root of the guest's filesystem
FILE = "counter"
#: one filesystem block per counter record: the file is exactly one block
_FS_BLOCK = counter.BLOCK_SIZE
#: the superblock feature ext4 sets while mounted and clears on a clean
#: unmount or a freeze: set on a copy, the journal must be replayed first
NEEDS_RECOVERY = "needs_recovery"


@dataclasses.dataclass(frozen=True)
class FsCheck:
    needs_recovery: bool  # the journal holds transactions not yet in place
    clean: bool  # e2fsck -fn found nothing to fix
    report: str  # e2fsck's output, for a failing test's message


def make_image(path: pathlib.Path, *, size: int, run: hostcmd.Runner = hostcmd.run) -> None:
    """A raw image of `size` bytes holding ext4 with the counter file at value 0.

    The file starts with a record (not zeros, which mke2fs leaves as a hole),
    so its block is allocated here and the guest only ever overwrites it.
    """
    with tempfile.TemporaryDirectory(prefix="csi-vm-fs-") as root:
        first = counter.MAGIC + b" %020d 0 0\n" % 0
        (pathlib.Path(root) / FILE).write_bytes(first.ljust(_FS_BLOCK, b"\0"))
        with path.open("wb") as image:
            image.truncate(size)
        run(["mkfs.ext4", "-q", "-F", "-b", str(_FS_BLOCK), "-E", "nodiscard",
             "-d", root, str(path)], None)  # fmt: skip


def record_offset(path: str | os.PathLike[str], *, run: hostcmd.Runner = hostcmd.run) -> int:
    """Byte offset of the counter file's block on the disk or image `path`."""
    out = run(["debugfs", "-R", f"bmap /{FILE} 0", str(path)], None).strip()
    if not re.fullmatch(r"\d+", out) or int(out) == 0:
        raise errors.DataSafetyError(
            f"{path} holds no ext4 filesystem with a /{FILE} block", hint=f"debugfs: {out!r}"
        )
    return int(out) * _FS_BLOCK


def read_record(
    path: str | os.PathLike[str], *, offset: int | None = None
) -> counter.Record | None:
    """The record in the counter file; `offset` from `record_offset` saves a debugfs run."""
    at = record_offset(path) if offset is None else offset
    return counter.parse(counter.read_block(path, offset=at), source=f"{path}:/{FILE}")


def read_counter(path: str | os.PathLike[str], *, offset: int | None = None) -> int:
    record = read_record(path, offset=offset)
    return record.value if record else 0


def check(path: pathlib.Path, *, run: hostcmd.Runner = hostcmd.run) -> FsCheck:
    """Whether the filesystem in the image `path` (a copy: nothing is changed) is clean."""
    header = run(["dumpe2fs", "-h", str(path)], None)
    features = next(
        (line.split(":", 1)[1].split() for line in header.splitlines()
         if line.startswith("Filesystem features:")),
        [],
    )  # fmt: skip
    try:
        report, clean = run(["e2fsck", "-f", "-n", str(path)], None), True
    except errors.OperationFailed as err:  # e2fsck's exit code says it found problems
        report, clean = f"{err.message}: {err.hint}", False
    return FsCheck(needs_recovery=NEEDS_RECOVERY in features, clean=clean, report=report)
