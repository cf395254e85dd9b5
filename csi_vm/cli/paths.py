"""Where csi-vm keeps its own files, overridable by environment for tests and services."""

from __future__ import annotations

import os
import pathlib

import platformdirs


def state_dir() -> pathlib.Path:
    """Probe journals and other state that must outlive a crashed command."""
    override = os.environ.get("CSI_VM_STATE_DIR")
    if override:
        return pathlib.Path(override)
    return pathlib.Path(platformdirs.user_state_dir("csi-vm"))


def probe_journals() -> pathlib.Path:
    return state_dir() / "probe-journals"
