"""The launcher's one door to host programs (apt-get, dpkg-deb, ...).

Callers take a `Runner` argument defaulting to `run`, so unit tests can
replace the host without patching.
"""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Callable, Sequence

from csi_vm import errors

#: a host program's output (stdout) for an argument list, run in an optional directory
Runner = Callable[[Sequence[str], pathlib.Path | None], str]

#: package downloads are the slowest calls (tens of MiB); nothing else comes close
TIMEOUT_S = 600.0
_STDERR_TAIL = 2000


def run(args: Sequence[str], cwd: pathlib.Path | None = None) -> str:
    """Run a program and return its stdout; a failure raises with its stderr."""
    what = " ".join(args[:3])
    try:
        done = subprocess.run(
            list(args),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as err:
        raise errors.Unsupported(
            f"{args[0]} is not installed on this host", hint="run scripts/setup"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise errors.Unreachable(f"{what} did not finish within {TIMEOUT_S:.0f} s") from err
    if done.returncode != 0:
        raise errors.OperationFailed(
            f"{what} failed with exit code {done.returncode}",
            hint=done.stderr.strip()[-_STDERR_TAIL:] or None,
        )
    return done.stdout
