"""Typed requests the core services accept, already converted from protobuf.

Only the fields a service uses are here; secrets never are, so no core code
can log them by accident.
"""

from __future__ import annotations

import dataclasses

from csi_vm.localdriver import model

Segment = dict[str, str]


@dataclasses.dataclass(frozen=True)
class CapacityRange:
    required: int = 0
    limit: int = 0


@dataclasses.dataclass(frozen=True)
class CreateVolume:
    name: str
    capacity: CapacityRange
    caps: tuple[model.Capability, ...]
    parameters: dict[str, str]
    mutable: dict[str, str]
    source: model.Source | None
    requisite: tuple[Segment, ...] = ()
    preferred: tuple[Segment, ...] = ()


@dataclasses.dataclass(frozen=True)
class ExpandVolume:
    volume_id: str
    capacity: CapacityRange | None
    cap: model.Capability | None


@dataclasses.dataclass(frozen=True)
class ControllerPublish:
    volume_id: str
    node_id: str
    cap: model.Capability | None
    readonly: bool


@dataclasses.dataclass(frozen=True)
class Stage:
    volume_id: str
    staging_path: str
    cap: model.Capability | None


@dataclasses.dataclass(frozen=True)
class Publish:
    volume_id: str
    staging_path: str
    target_path: str
    cap: model.Capability | None
    readonly: bool


@dataclasses.dataclass(frozen=True)
class NodeExpand:
    volume_id: str
    volume_path: str
    capacity: CapacityRange | None
    cap: model.Capability | None


@dataclasses.dataclass(frozen=True)
class CreateGroup:
    name: str
    source_volume_ids: tuple[str, ...]
    parameters: dict[str, str]
