"""Sizes, names, ids and paths the driver accepts, checked before any work starts.

Pure functions: each raises an error from the project tree whose message
names the offending request field, so a client can fix its request.
"""

from __future__ import annotations

import os
import pathlib
import re
import uuid

from csi_vm import errors

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

#: CapacityRange left empty gets this size, the common default of cloud block drivers.
DEFAULT_VOLUME_BYTES = 1 * GiB
#: Sizes are rounded up to whole MiB: loop devices need 512-byte multiples and
#: both mkfs tools lay out cleanly on MiB boundaries.
ALIGNMENT_BYTES = 1 * MiB
#: Smallest volume: one alignment unit (mkfs.ext4 still works at this size).
MINIMUM_VOLUME_BYTES = ALIGNMENT_BYTES
#: mkfs.xfs (xfsprogs 6.x) refuses filesystems below 300 MiB.
MINIMUM_XFS_BYTES = 300 * MiB
#: Largest volume: 8 TiB, half of ext4's 16 TiB file size limit for 4 KiB blocks,
#: so an image file stays valid even when the state dir is on ext4.
MAXIMUM_VOLUME_BYTES = 8 * TiB
#: CSI's general limit for string fields: 128 bytes.
MAX_NAME_BYTES = 128
#: Filesystems NodeStage can make; the empty fs_type means the first.
SUPPORTED_FS_TYPES = ("ext4", "xfs")

# CSI names may hold any Unicode except these control characters.
_BANNED_NAME_CHARS = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")
_ID_PATTERN = re.compile(r"(vol|snap|group)-[0-9a-f]{32}")


def check_name(name: str, *, field: str) -> str:
    """Check a CO-chosen object name (CreateVolume, CreateSnapshot, group names)."""
    if not name:
        raise errors.InvalidInput(f"{field} is required and must not be empty")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise errors.InvalidInput(
            f"{field} is {len(name.encode())} bytes long; the limit is {MAX_NAME_BYTES} bytes"
        )
    if _BANNED_NAME_CHARS.search(name):
        raise errors.InvalidInput(f"{field} contains a control character CSI forbids in names")
    return name


def new_id(kind: str) -> str:
    """Mint an id ('vol', 'snap' or 'group'); ids double as file names, so they are plain."""
    return f"{kind}-{uuid.uuid4().hex}"


def require_id(value: str, *, field: str) -> str:
    """A required id field must be present; its content is checked by `is_known_shape`."""
    if not value:
        raise errors.InvalidInput(f"{field} is required and must not be empty")
    return value


def is_known_shape(object_id: str, *, kind: str) -> bool:
    """True if the id could have been minted here; other ids cannot exist (NOT_FOUND)."""
    return _ID_PATTERN.fullmatch(object_id) is not None and object_id.startswith(f"{kind}-")


def round_up(size: int) -> int:
    return -(-size // ALIGNMENT_BYTES) * ALIGNMENT_BYTES


def resolve_size(
    required: int, limit: int, *, minimum: int = MINIMUM_VOLUME_BYTES, field: str
) -> int:
    """Pick the size for a CapacityRange: rounded up, within [required, limit].

    required == 0 means "not given" (CSI zero-value rule), likewise limit.
    """
    if required < 0 or limit < 0:
        raise errors.InvalidInput(f"{field}: required_bytes and limit_bytes must not be negative")
    if required and limit and limit < required:
        raise errors.InvalidInput(
            f"{field}: limit_bytes {limit} is smaller than required_bytes {required}"
        )
    wanted = max(required or DEFAULT_VOLUME_BYTES, minimum)
    if limit and not required:
        wanted = min(wanted, limit)
    size = round_up(wanted)
    if limit and size > limit:
        size = limit - limit % ALIGNMENT_BYTES  # round down instead, if that still fits
    if size < max(required, minimum) or size <= 0:
        raise errors.OutOfRange(
            f"{field}: no size between {required} and {limit} bytes is a multiple of "
            f"{ALIGNMENT_BYTES} bytes and at least {minimum} bytes"
        )
    if size > MAXIMUM_VOLUME_BYTES:
        raise errors.OutOfRange(
            f"{field}: {size} bytes is above this driver's maximum of {MAXIMUM_VOLUME_BYTES}"
        )
    return size


def check_host_path(path: str, *, field: str, state_dir: pathlib.Path) -> pathlib.Path:
    """A node path from the CO: absolute, not '/', and never inside the driver's state."""
    if not path:
        raise errors.InvalidInput(f"{field} is required and must not be empty")
    if "\0" in path:
        raise errors.InvalidInput(f"{field} contains a NUL byte")
    if not os.path.isabs(path):
        raise errors.InvalidInput(f"{field} {path!r} must be an absolute path")
    resolved = pathlib.Path(os.path.realpath(path))
    if resolved == pathlib.Path("/"):
        raise errors.InvalidInput(f"{field} must not be the root directory")
    state = pathlib.Path(os.path.realpath(state_dir))
    if resolved == state or state in resolved.parents:
        raise errors.InvalidInput(
            f"{field} {path!r} lies inside the driver's state directory",
            hint="publish and stage volumes outside the state dir",
        )
    return pathlib.Path(os.path.normpath(path))


#: Mutable parameters (CreateVolume and ControllerModifyVolume). They are stored
#: and reported but do not change I/O: enough for clients to exercise the RPC.
#: A tuple lists the allowed values; an empty tuple allows any short text.
MUTABLE_PARAMETERS: dict[str, tuple[str, ...]] = {
    "tier": ("standard", "fast", "archive"),
    "label": (),
}
_MAX_LABEL = 63


def check_mutable(params: dict[str, str], *, field: str) -> dict[str, str]:
    for key, value in params.items():
        if key not in MUTABLE_PARAMETERS:
            known = ", ".join(sorted(MUTABLE_PARAMETERS))
            raise errors.InvalidInput(f"{field}: unknown parameter {key!r} (known: {known})")
        allowed = MUTABLE_PARAMETERS[key]
        if allowed and value not in allowed:
            raise errors.InvalidInput(
                f"{field}[{key!r}]: {value!r} is not one of {', '.join(allowed)}"
            )
        if len(value) > _MAX_LABEL:
            raise errors.InvalidInput(f"{field}[{key!r}] is longer than {_MAX_LABEL} characters")
    return dict(params)
