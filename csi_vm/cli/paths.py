"""Where csi-vm keeps its own files, overridable by environment for tests and services."""

from __future__ import annotations

import os
import pathlib


def state_dir() -> pathlib.Path:
    """Probe journals and other state that must outlive a crashed command."""
    override = os.environ.get("CSI_VM_STATE_DIR")
    if override:
        return pathlib.Path(override)
    # imported here: a command run with CSI_VM_STATE_DIR set (a service, a
    # test, a benchmark) starts without it
    import platformdirs  # noqa: PLC0415

    return pathlib.Path(platformdirs.user_state_dir("csi-vm"))


def probe_journals() -> pathlib.Path:
    return state_dir() / "probe-journals"
