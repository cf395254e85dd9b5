"""The counter guest's on-disk record: the shell loop that writes it and the reader.

The guest writes one text record to a fixed 4 KiB block of its first disk,
with fsync, every `INTERVAL_S`, and echoes each value to the serial console
only after the write returned: a value on the console was acknowledged. A
test reads the block from the host afterwards to prove the guest kept running
and that no acknowledged write was lost (across a migration, snapshot, pivot).

    CSIVMCTR <counter, 20 digits> <guest epoch seconds.micros> <disk size, sectors>\\n

padded with NUL bytes to the block size. The disk size lets a test see what
the guest sees after an online expansion.
"""

from __future__ import annotations

import dataclasses
import errno
import mmap
import os
import pathlib

from csi_vm import errors

MAGIC = b"CSIVMCTR"
#: a whole aligned 4 KiB block, so the guest never read-modify-writes a page
#: and the host can read it with O_DIRECT on 512e and 4Kn devices alike
BLOCK_SIZE = 4096
#: block 1 (byte 4096): block 0 is where partition tables and boot sectors live
BLOCK_INDEX = 1
OFFSET = BLOCK_SIZE * BLOCK_INDEX
#: between writes; 100-200 ms keeps a migration's short pause visible as a gap
INTERVAL_S = 0.15


@dataclasses.dataclass(frozen=True)
class Record:
    value: int
    written_at: float  # guest wall clock, seconds since the epoch
    disk_sectors: int  # size of the disk as the guest saw it, 512-byte sectors


def shell_loop(device: str) -> str:
    """busybox sh code that continues the counter found on `device` and writes forever."""
    return _loop(target=device, index=BLOCK_INDEX, disk=device)


def file_loop(path: str, *, disk: str) -> str:
    """The same loop writing the record to the first block of a file, through its filesystem.

    The file exists before the guest starts (`fs_image`), so each write
    overwrites the same allocated block and only the inode's times change.
    """
    return _loop(target=path, index=0, disk=disk)


def _loop(*, target: str, index: int, disk: str) -> str:
    return f"""\
n=0
set -- $(dd if={target} bs={BLOCK_SIZE} skip={index} count=1 2>/dev/null \\
  | head -n 1 | tr -d '\\000')
if [ "$1" = {MAGIC.decode()} ]; then
  # strip leading zeros: ash reads them as octal
  n=${{2#"${{2%%[!0]*}}"}}
  n=${{n:-0}}
fi
echo "CSIVMCTR start from $n"
while :; do
  n=$((n + 1))
  read sectors < /sys/block/{disk.removeprefix("/dev/")}/size
  printf '{MAGIC.decode()} %020d %s %s\\n' "$n" "$EPOCHREALTIME" "$sectors" > /tmp/record
  if dd if=/tmp/record of={target} bs={BLOCK_SIZE} seek={index} count=1 \\
      conv=sync,notrunc,fsync 2>/dev/null; then
    echo "CSIVMCTR $n"
  else
    echo "CSIVMCTR write failed at $n"
    n=$((n - 1))
  fi
  sleep {INTERVAL_S}
done
"""


def parse(block: bytes, *, source: str = "block") -> Record | None:
    """The record in a block read from the disk; None when the block is all zeros."""
    if not block.strip(b"\0"):
        return None
    text = block.split(b"\0", 1)[0]
    fields = text.split()
    if len(fields) != 4 or fields[0] != MAGIC:
        raise errors.DataSafetyError(
            f"{source} holds neither a counter record nor zeros at byte {OFFSET}",
            hint=f"starts with {block[:24]!r}",
        )
    try:
        return Record(int(fields[1]), float(fields[2]), int(fields[3]))
    except ValueError as err:
        raise errors.DataSafetyError(f"{source}: malformed counter record {text[:80]!r}") from err


def _open_direct(path: pathlib.Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
    # tmpfs and a few others refuse O_DIRECT; there is no other cache to bypass
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def read_block(path: str | os.PathLike[str], *, offset: int = OFFSET) -> bytes:
    """The counter block of a disk (device or raw image), bypassing the host page cache.

    `offset`: where the record is when it is not at `OFFSET` (the file of
    the agent guest's filesystem, see `launcher.fscounter`).
    """
    # O_DIRECT needs an aligned buffer: an anonymous mmap is page-aligned.
    with mmap.mmap(-1, BLOCK_SIZE) as buf:
        try:
            fd = _open_direct(pathlib.Path(path))
        except FileNotFoundError as err:
            raise errors.NotFound(f"no disk at {path}") from err
        try:
            got = os.preadv(fd, [buf], offset)
        finally:
            os.close(fd)
        return bytes(buf[:got]).ljust(BLOCK_SIZE, b"\0")


def read_record(path: str | os.PathLike[str]) -> Record | None:
    return parse(read_block(path), source=str(path))


def read_counter(path: str | os.PathLike[str]) -> int:
    """The last value the guest wrote to this disk; 0 before its first write."""
    record = read_record(path)
    return record.value if record else 0
