"""The VM spec a user writes (`csi-vm vm create -f vm.yaml`), validated at the boundary.

    name: web-1
    vcpus: 1
    memory_mib: 256
    disks:
      - name: root
        size: 64Mi                 # a Kubernetes quantity: Mi/Gi binary, M/G decimal
        driver: local-full         # a driver name from the config file
        mode: block                # block or filesystem
        source:                    # optional; blank when absent
          image: ./root.qcow2      # or: snapshot: NAME / vm: OTHER, disk: DISK

Every problem is reported as one line naming the field.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pydantic
import yaml

from csi_vm import config, diskmode, errors, sizes

#: a disk's mode, as the spec's users name it (spec.Mode); store records read
#: it from diskmode without loading pydantic
Mode = diskmode.Mode

#: the largest disk csi-vm accepts: far beyond any test, far below int64 limits
MAX_DISK_BYTES = 64 * 1024**4


def parse_size(value: object, *, field: str = "size", notes: list[str] | None = None) -> int:
    """Bytes from 1048576 or a Kubernetes quantity ('64Mi', '20G' = 20 x 1000^3).

    A note on an ambiguous spelling ('20GB') goes into `notes`, for the
    command to show.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field} must be a size like 64Mi, not a boolean")
    if isinstance(value, int):
        number = value
    else:
        size = sizes.parse(str(value), field=field)
        number = size.bytes
        if size.note is not None and notes is not None:
            notes.append(size.note)
    if number <= 0:
        raise ValueError(f"{field} must be larger than 0")
    if number > MAX_DISK_BYTES:
        raise ValueError(f"{field} {value!r} is larger than the 64 TiB csi-vm allows")
    return number


class Source(pydantic.BaseModel):
    """Where a disk's first content comes from; all unset means a blank disk."""

    # defer_build (here and below): validators are built when a spec is first
    # read, not at import, which `vm list` and every store read would pay for.
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)

    image: pathlib.Path | None = None
    snapshot: str | None = None
    vm: str | None = None
    disk: str | None = None

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> Source:
        kinds = [k for k in ("image", "snapshot", "vm") if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError(f"give only one of image, snapshot or vm (got {', '.join(kinds)})")
        if (self.vm is None) != (self.disk is None):
            raise ValueError("a vm source needs both vm and disk")
        return self

    @property
    def kind(self) -> str:
        if self.image is not None:
            return "image"
        if self.snapshot is not None:
            return "snapshot"
        if self.vm is not None:
            return "vm"
        return "blank"


class DiskSpec(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str
    size: int
    driver: str
    mode: Mode = Mode.BLOCK
    source: Source = Source()

    @pydantic.field_validator("name", "driver")
    @classmethod
    def _plain(cls, value: str, info: pydantic.ValidationInfo) -> str:
        return config.check_name(value, what=f"disk {info.field_name}")

    @pydantic.field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: Any, info: pydantic.ValidationInfo) -> int:
        notes = info.context.get("notes") if isinstance(info.context, dict) else None
        return parse_size(value, notes=notes)


class VMSpec(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str
    vcpus: int = pydantic.Field(default=1, ge=1, le=64)
    memory_mib: int = pydantic.Field(default=256, ge=16, le=1024 * 1024)
    disks: tuple[DiskSpec, ...] = pydantic.Field(min_length=1, max_length=16)

    @pydantic.field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return config.check_name(value, what="VM name")

    @pydantic.field_validator("disks")
    @classmethod
    def _unique_disks(cls, disks: tuple[DiskSpec, ...]) -> tuple[DiskSpec, ...]:
        names = [d.name for d in disks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"disk names must be unique (repeated: {', '.join(dupes)})")
        return disks

    def disk(self, name: str) -> DiskSpec:
        for disk in self.disks:
            if disk.name == name:
                return disk
        known = ", ".join(d.name for d in self.disks)
        raise errors.NotFound(f"VM {self.name!r} has no disk {name!r} (disks: {known})")


def load(path: pathlib.Path, *, notes: list[str] | None = None) -> VMSpec:
    """Read and validate a VM spec file; relative image paths are resolved against it.

    Notes on ambiguous sizes go into `notes`.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise errors.InvalidInput(f"VM spec {path} does not exist") from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise errors.InvalidInput(f"cannot read VM spec {path}: {config.one_line(err)}") from err
    if not isinstance(data, dict):
        raise errors.InvalidInput(f"{path}: a VM spec is a mapping with name and disks")
    try:
        spec = VMSpec.model_validate(data, context={"notes": notes})
    except pydantic.ValidationError as err:
        raise errors.InvalidInput(f"{path}: {config.describe(err)}") from err
    return _resolve_images(spec, base=path.parent)


def _resolve_images(spec: VMSpec, *, base: pathlib.Path) -> VMSpec:
    return spec.model_copy(update={"disks": tuple(_resolved(d, base) for d in spec.disks)})


def _resolved(disk: DiskSpec, base: pathlib.Path) -> DiskSpec:
    image = disk.source.image
    if image is None or image.is_absolute():
        return disk
    return disk.model_copy(
        update={"source": disk.source.model_copy(update={"image": base / image})}
    )
