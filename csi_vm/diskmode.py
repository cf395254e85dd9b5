"""How a VM disk reaches the guest: a raw block device, or a filesystem holding its image.

Its own module, without pydantic: store records carry a disk's mode, and
`vm list` or `vm show` read them without loading the spec's models.
"""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    BLOCK = "block"
    FILESYSTEM = "filesystem"
