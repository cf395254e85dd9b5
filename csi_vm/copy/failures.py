"""OS errors of the copy engine, mapped once into csi-vm's error tree."""

from __future__ import annotations

import errno
import os
import pathlib

from csi_vm import errors

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def translate(err: OSError, *, path: pathlib.Path, doing: str) -> errors.CsiVmError:
    """One line saying what failed on which file, and what to do about it."""
    code = err.errno or 0
    reason = os.strerror(code) if code else str(err)
    where = f"{doing} {path}"
    if code in _NO_SPACE:
        return errors.OutOfRange(
            f"no space left while {where}",
            hint="free some space or choose a target on a larger filesystem",
        )
    if code == errno.ENOENT:
        return errors.NotFound(f"{where}: no such file or directory")
    if code in _DENIED:
        return errors.Rejected(f"{where}: {reason}", hint="check permissions (root for devices)")
    if code == errno.EBUSY:
        return errors.Rejected(f"{where}: device is in use", hint="unmount it or detach its user")
    if code == errno.EISDIR:
        return errors.InvalidInput(f"{where}: is a directory", hint="give a file or device path")
    return errors.OperationFailed(f"{where}: {reason}")
