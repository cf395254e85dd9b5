"""A VM disk's claim in its volumeMode: Block (the volume is the disk) or Filesystem (a file in it).

Every claim the controller makes from another (a snapshot's copy, a restore,
a clone, a copy into a larger claim) takes the mode of the claim it comes
from: the snapshot controller refuses to restore a VolumeSnapshot into a
claim of the other mode, and a Filesystem disk's data is its image file
(`csi_vm.diskfile.IMAGE_NAME`), which only a claim of that mode holds.

A Filesystem claim asks for more than its disk (`diskfile.volume_bytes`:
the filesystem's own room), so its request does not tell how large the disk
is. The controller writes the disk's size on such a claim in an annotation,
and measures a growth of the disk against that.
"""

from __future__ import annotations

from csi_vm import diskfile, errors
from csi_vm.crd import kinds, rules
from csi_vm.crd import models as crd
from csi_vm.kube import objects, quantity

Json = objects.Json
BLOCK = crd.VolumeMode.BLOCK
FILESYSTEM = crd.VolumeMode.FILESYSTEM
#: On a Filesystem claim the controller made: the size of the disk it holds.
DISK_SIZE_ANNOTATION = "csi-vm.io/disk-size"
_MIB = 1 << 20


def of_source(
    objs: objects.Objects, *, claim: str, namespace: str, fallback: crd.VolumeMode
) -> crd.VolumeMode:
    """The mode of the claim ``claim``; ``fallback`` (the disk's spec) while there is none."""
    try:
        return rules.volume_mode(objs.get(kinds.PVC, claim, namespace=namespace))
    except errors.NotFound:
        return fallback


def recorded(entry: Json) -> crd.VolumeMode:
    """The mode an operation's per-disk status records for a disk.

    A status written before the mode was recorded is of a Block claim: the
    controller made no other kind then.
    """
    return FILESYSTEM if entry.get("volumeMode") == FILESYSTEM.value else BLOCK


def request(size: str, mode: crd.VolumeMode) -> str:
    """The storage a claim in ``mode`` requests for a disk of ``size``."""
    if mode is BLOCK:
        return size
    return f"{diskfile.volume_bytes(quantity.to_bytes(size)) // _MIB}Mi"


def disk_bytes(pvc: Json) -> int | None:
    """The size of the disk ``pvc`` holds: its annotation, else its request; None for neither.

    A claim without the annotation (Block, or one the user made) holds a disk
    as large as it asks for.
    """
    annotations = (pvc.get("metadata") or {}).get("annotations") or {}
    requests = ((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}
    size = annotations.get(DISK_SIZE_ANNOTATION) or requests.get("storage")
    return quantity.to_bytes(str(size)) if size else None
