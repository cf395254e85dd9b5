"""Which process owns a flow or a VM lock, in a form that survives reboots and PID reuse.

A bare PID is not an identity: after a reboot, or once the kernel hands the
number to another process, `kill(pid, 0)` says "alive" for a process that
never heard of the flow, and the VM stays Busy forever. An owner is the PID
plus the process's start time (field 22 of /proc/PID/stat, clock ticks since
boot) plus the boot id (/proc/sys/kernel/random/boot_id, new at every boot).
It is alive only while all three match.

Rows written before schema 4 have no start time or boot id; they are judged
by the PID alone, as they were then.

`Proc` reads /proc; tests give it another boot id file to play a reboot.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

BOOT_ID = pathlib.Path("/proc/sys/kernel/random/boot_id")
PROC = pathlib.Path("/proc")
#: /proc/PID/stat fields counted after the command name's closing parenthesis:
#: field 3 (the state) comes first, field 22 (the start time) 19 later
_STATE, _START = 0, 22 - 3


@dataclasses.dataclass(frozen=True, kw_only=True)
class Owner:
    pid: int
    start: int  # clock ticks after boot; -1: not recorded (schema < 4)
    boot: str  # the boot id; '': not recorded (schema < 4)


@dataclasses.dataclass(frozen=True)
class _Stat:
    state: str
    start: int


class Proc:
    """The process table and the boot id, as the kernel shows them."""

    def __init__(self, *, root: pathlib.Path = PROC, boot_id: pathlib.Path = BOOT_ID) -> None:
        self._root = root
        self._boot_id = boot_id

    def boot_id(self) -> str:
        return self._boot_id.read_text(encoding="ascii").strip()

    def stat(self, pid: int) -> _Stat | None:
        """State and start time of `pid`, None when there is no such process."""
        try:
            text = (self._root / str(pid) / "stat").read_text(encoding="ascii")
        except (FileNotFoundError, ProcessLookupError):
            return None
        # the command name may hold spaces and parentheses: split after the last ')'
        fields = text.rsplit(")", 1)[1].split()
        return _Stat(state=fields[_STATE], start=int(fields[_START]))

    def me(self) -> Owner:
        """This process, as it is recorded as an owner."""
        pid = os.getpid()
        found = self.stat(pid)
        start = found.start if found is not None else -1
        return Owner(pid=pid, start=start, boot=self.boot_id())

    def alive(self, owner: Owner) -> bool:
        """The recorded owner still runs: same boot, same PID, same start time, no zombie."""
        if not owner.boot:
            return _pid_alive(owner.pid, self)
        if owner.boot != self.boot_id():
            return False  # rebooted since: every process of then is gone
        found = self.stat(owner.pid)
        # another start time: the PID now belongs to another process
        return found is not None and found.state != "Z" and found.start == owner.start


def _pid_alive(pid: int, proc: Proc) -> bool:
    """The judgement of rows recorded before schema 4: the PID alone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    found = proc.stat(pid)
    # a zombie has exited; its flow will never finish
    return found is None or found.state != "Z"
