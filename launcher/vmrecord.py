"""What the launcher did on a node for one VM, kept on disk until it is undone.

Start writes each disk's staging and target paths here *before* the CSI call
that uses them, and stop reads them back, so a stop in a later process (or
after a crash half-way through a start) reverses exactly what was done. CSI
node calls are idempotent, so undoing a step that never happened is harmless.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

from csi_vm import errors

_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiskRecord:
    volume_id: str
    target: str  # guest device name
    block: bool  # block access; else a filesystem volume holding an image file
    staging_path: str  # "" when the driver does not stage
    publish_path: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class VmRecord:
    name: str
    uri: str  # the libvirt node the domain was defined on
    disks: tuple[DiskRecord, ...] = ()

    def with_disk(self, disk: DiskRecord) -> VmRecord:
        return dataclasses.replace(self, disks=(*self.disks, disk))


def save(path: pathlib.Path, record: VmRecord) -> None:
    """Write atomically: a reader sees the old or the new record, never half of one."""
    data = {"version": _VERSION, **dataclasses.asdict(record)}
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as out:
        json.dump(data, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def load(path: pathlib.Path) -> VmRecord:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise errors.NotFound(f"no launcher record at {path}") from err
    except ValueError as err:
        raise errors.DataSafetyError(
            f"launcher record {path} is unreadable", hint="inspect it before removing it"
        ) from err
    if data.pop("version", None) != _VERSION:
        raise errors.DataSafetyError(f"launcher record {path} has an unknown version")
    disks = tuple(DiskRecord(**disk) for disk in data.pop("disks"))
    return VmRecord(**data, disks=disks)
