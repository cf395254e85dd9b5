"""A VM disk on a filesystem-mode volume: one raw image file, and the room around it.

A volume in filesystem mode holds the disk as the file `IMAGE_NAME` at the
root of its filesystem, wherever that is mounted. The local flows and the
launcher on one machine, the node agent, and the controller's host-copy Jobs
on Kubernetes all read and write that one name.

The volume must be larger than the image, since the filesystem keeps part
of it for itself; `volume_bytes` is how much larger a claim the controller
makes is. Imports nothing, so every layer may use it.
"""

from __future__ import annotations

IMAGE_NAME = "disk.img"

_MIB = 1 << 20
# The room the filesystem takes: 1/16 of the disk, and at least 128 MiB.
# Measured on fresh filesystems made with the defaults of mkfs.ext4
# (e2fsprogs 1.47) and mkfs.xfs (xfsprogs 6): ext4 keeps 2-5% of a large
# volume (inode tables, journal) and up to 10% of one below 512 MiB (more
# inodes per byte there); XFS keeps about 64 MiB (its log) up to 50 GiB.
# The floor covers the small volumes, the fraction the large ones, with a
# margin for the extent tree of a fully written image. ext4's blocks
# reserved for root count as room: the image's writers (qemu, the copy Job)
# run as root.
_OVERHEAD_FRACTION = 16
OVERHEAD_FLOOR = 128 * _MIB


def volume_bytes(disk_bytes: int) -> int:
    """The size of a filesystem volume that holds an image of ``disk_bytes``, in whole MiB."""
    overhead = max(disk_bytes // _OVERHEAD_FRACTION, OVERHEAD_FLOOR)
    return -(-(disk_bytes + overhead) // _MIB) * _MIB
