"""Detaching the loop devices a test made, never another process's.

A loop device's name is not its identity: once it is detached the kernel hands
the number to the next attach, which on a shared machine may be another test
run's driver. A name listed a moment ago and detached now can take that
driver's device from under its published targets. So a device is detached
only while, held open, it still reads a file under the caller's directory:
holding it open pins what it is bound to.
"""

from __future__ import annotations

import fcntl
import os
import pathlib

from csi_vm.localdriver import kernel


def detach_under(device: str, directory: pathlib.Path | str) -> bool:
    """Detach ``device`` if it reads a file under ``directory``; whether it did."""
    prefix = os.path.realpath(directory) + os.sep
    try:
        fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        sysfs = pathlib.Path("/sys/block", pathlib.Path(device).name, "loop", "backing_file")
        if not sysfs.read_text().startswith(prefix):
            return False
        fcntl.ioctl(fd, kernel.LOOP_CLR_FD, 0)
        return True
    except OSError:  # not attached (any more)
        return False
    finally:
        os.close(fd)
