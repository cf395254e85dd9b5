"""The committed CSI bindings: reproducible from the protos, and wire-compatible with CSI v1.12."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor

from csi_vm.csi.pb import csi_pb2, csi_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
PB_DIR = Path("csi_vm/csi/pb")
GENERATED = tuple(
    f"{proto}{suffix}"
    for proto in ("csi", "pluginregistration")
    for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
)

FILE = csi_pb2.DESCRIPTOR


def _message(name: str) -> descriptor.Descriptor:
    msg = FILE.pool.FindMessageTypeByName(f"csi.v1.{name}")
    assert isinstance(msg, descriptor.Descriptor)
    return msg


def _field(path: str) -> descriptor.FieldDescriptor:
    message, _, field = path.rpartition(".")
    return _message(message).fields_by_name[field]


def _is_map(field: descriptor.FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


# --- (a) the committed files are exactly what the generator produces ---------------------------


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "gen-proto"), str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    produced = sorted(p.name for p in (tmp_path / PB_DIR).iterdir())
    assert produced == sorted(GENERATED)
    for name in GENERATED:
        fresh = (tmp_path / PB_DIR / name).read_bytes()
        committed = (REPO_ROOT / PB_DIR / name).read_bytes()
        assert fresh == committed, f"{name} is stale: run scripts/gen-proto"


def test_grpc_module_imports_messages_by_package_path() -> None:
    source = (REPO_ROOT / PB_DIR / "csi_pb2_grpc.py").read_text()
    assert "from csi_vm.csi.pb import csi_pb2" in source


def test_file_identity() -> None:
    assert FILE.package == "csi.v1"
    assert FILE.GetOptions().go_package == "github.com/container-storage-interface/spec/lib/go/csi"
    assert [d.name for d in FILE.dependencies] == [
        "google/protobuf/descriptor.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/wrappers.proto",
    ]


# --- (b) wire facts ---------------------------------------------------------------------------

# (message.field, number, kind); kind is "map", "repeated", a scalar type name, or the
# full name of the message or enum the field carries.
FIELD_FACTS: list[tuple[str, int, str]] = [
    ("CreateVolumeRequest.name", 1, "string"),
    ("CreateVolumeRequest.capacity_range", 2, "csi.v1.CapacityRange"),
    ("CreateVolumeRequest.volume_capabilities", 3, "repeated"),
    ("CreateVolumeRequest.parameters", 4, "map"),
    ("CreateVolumeRequest.secrets", 5, "map"),
    ("CreateVolumeRequest.volume_content_source", 6, "csi.v1.VolumeContentSource"),
    ("CreateVolumeRequest.accessibility_requirements", 7, "csi.v1.TopologyRequirement"),
    ("CreateVolumeRequest.mutable_parameters", 8, "map"),
    ("VolumeContentSource.snapshot", 1, "csi.v1.VolumeContentSource.SnapshotSource"),
    ("VolumeContentSource.volume", 2, "csi.v1.VolumeContentSource.VolumeSource"),
    ("VolumeContentSource.SnapshotSource.snapshot_id", 1, "string"),
    ("VolumeContentSource.VolumeSource.volume_id", 1, "string"),
    ("VolumeCapability.block", 1, "csi.v1.VolumeCapability.BlockVolume"),
    ("VolumeCapability.mount", 2, "csi.v1.VolumeCapability.MountVolume"),
    ("VolumeCapability.access_mode", 3, "csi.v1.VolumeCapability.AccessMode"),
    ("VolumeCapability.MountVolume.fs_type", 1, "string"),
    ("VolumeCapability.MountVolume.mount_flags", 2, "repeated"),
    ("VolumeCapability.MountVolume.volume_mount_group", 3, "string"),
    ("VolumeCapability.AccessMode.mode", 1, "csi.v1.VolumeCapability.AccessMode.Mode"),
    ("CapacityRange.required_bytes", 1, "int64"),
    ("CapacityRange.limit_bytes", 2, "int64"),
    ("Volume.capacity_bytes", 1, "int64"),
    ("Volume.volume_id", 2, "string"),
    ("Volume.volume_context", 3, "map"),
    ("Volume.content_source", 4, "csi.v1.VolumeContentSource"),
    ("Volume.accessible_topology", 5, "repeated"),
    ("Topology.segments", 1, "map"),
    ("CreateSnapshotRequest.source_volume_id", 1, "string"),
    ("CreateSnapshotRequest.name", 2, "string"),
    ("CreateSnapshotRequest.secrets", 3, "map"),
    ("CreateSnapshotRequest.parameters", 4, "map"),
    ("Snapshot.size_bytes", 1, "int64"),
    ("Snapshot.snapshot_id", 2, "string"),
    ("Snapshot.source_volume_id", 3, "string"),
    ("Snapshot.creation_time", 4, "google.protobuf.Timestamp"),
    ("Snapshot.ready_to_use", 5, "bool"),
    ("Snapshot.group_snapshot_id", 6, "string"),
    ("ControllerExpandVolumeRequest.volume_id", 1, "string"),
    ("ControllerExpandVolumeRequest.capacity_range", 2, "csi.v1.CapacityRange"),
    ("ControllerExpandVolumeRequest.secrets", 3, "map"),
    ("ControllerExpandVolumeRequest.volume_capability", 4, "csi.v1.VolumeCapability"),
    ("ControllerExpandVolumeResponse.capacity_bytes", 1, "int64"),
    ("ControllerExpandVolumeResponse.node_expansion_required", 2, "bool"),
    ("NodeStageVolumeRequest.volume_id", 1, "string"),
    ("NodeStageVolumeRequest.publish_context", 2, "map"),
    ("NodeStageVolumeRequest.staging_target_path", 3, "string"),
    ("NodeStageVolumeRequest.volume_capability", 4, "csi.v1.VolumeCapability"),
    ("NodeStageVolumeRequest.secrets", 5, "map"),
    ("NodeStageVolumeRequest.volume_context", 6, "map"),
    ("NodePublishVolumeRequest.volume_id", 1, "string"),
    ("NodePublishVolumeRequest.publish_context", 2, "map"),
    ("NodePublishVolumeRequest.staging_target_path", 3, "string"),
    ("NodePublishVolumeRequest.target_path", 4, "string"),
    ("NodePublishVolumeRequest.volume_capability", 5, "csi.v1.VolumeCapability"),
    ("NodePublishVolumeRequest.readonly", 6, "bool"),
    ("NodePublishVolumeRequest.secrets", 7, "map"),
    ("NodePublishVolumeRequest.volume_context", 8, "map"),
    ("NodeExpandVolumeRequest.volume_id", 1, "string"),
    ("NodeExpandVolumeRequest.volume_path", 2, "string"),
    ("NodeExpandVolumeRequest.capacity_range", 3, "csi.v1.CapacityRange"),
    ("NodeExpandVolumeRequest.staging_target_path", 4, "string"),
    ("NodeExpandVolumeRequest.volume_capability", 5, "csi.v1.VolumeCapability"),
    ("NodeExpandVolumeRequest.secrets", 6, "map"),
    ("NodeGetInfoResponse.node_id", 1, "string"),
    ("NodeGetInfoResponse.max_volumes_per_node", 2, "int64"),
    ("NodeGetInfoResponse.accessible_topology", 3, "csi.v1.Topology"),
    ("ProbeResponse.ready", 1, "google.protobuf.BoolValue"),
    ("ControllerModifyVolumeRequest.volume_id", 1, "string"),
    ("ControllerModifyVolumeRequest.secrets", 2, "map"),
    ("ControllerModifyVolumeRequest.mutable_parameters", 3, "map"),
    ("GetMetadataAllocatedRequest.snapshot_id", 1, "string"),
    ("GetMetadataAllocatedRequest.starting_offset", 2, "int64"),
    ("GetMetadataAllocatedRequest.max_results", 3, "int32"),
    ("GetMetadataAllocatedRequest.secrets", 4, "map"),
    ("GetMetadataDeltaRequest.base_snapshot_id", 1, "string"),
    ("GetMetadataDeltaRequest.target_snapshot_id", 2, "string"),
    ("GetMetadataDeltaRequest.starting_offset", 3, "int64"),
    ("GetMetadataDeltaRequest.max_results", 4, "int32"),
    ("GetMetadataDeltaRequest.secrets", 5, "map"),
    ("GetMetadataAllocatedResponse.block_metadata_type", 1, "csi.v1.BlockMetadataType"),
    ("GetMetadataAllocatedResponse.volume_capacity_bytes", 2, "int64"),
    ("GetMetadataAllocatedResponse.block_metadata", 3, "repeated"),
    ("GetMetadataDeltaResponse.block_metadata_type", 1, "csi.v1.BlockMetadataType"),
    ("GetMetadataDeltaResponse.volume_capacity_bytes", 2, "int64"),
    ("GetMetadataDeltaResponse.block_metadata", 3, "repeated"),
    ("BlockMetadata.byte_offset", 1, "int64"),
    ("BlockMetadata.size_bytes", 2, "int64"),
]

_SCALARS = {
    descriptor.FieldDescriptor.TYPE_STRING: "string",
    descriptor.FieldDescriptor.TYPE_INT64: "int64",
    descriptor.FieldDescriptor.TYPE_INT32: "int32",
    descriptor.FieldDescriptor.TYPE_BOOL: "bool",
}


def _kind(field: descriptor.FieldDescriptor) -> str:
    if _is_map(field):
        return "map"
    if field.is_repeated:
        return "repeated"
    if field.message_type is not None:
        return str(field.message_type.full_name)
    if field.enum_type is not None:
        return str(field.enum_type.full_name)
    return _SCALARS[field.type]


@pytest.mark.parametrize(("path", "number", "kind"), FIELD_FACTS, ids=[f[0] for f in FIELD_FACTS])
def test_field_number_and_kind(path: str, number: int, kind: str) -> None:
    field = _field(path)
    assert field.number == number
    assert _kind(field) == kind


@pytest.mark.parametrize(
    ("message", "oneof", "members"),
    [
        ("VolumeContentSource", "type", ["snapshot", "volume"]),
        ("VolumeCapability", "access_type", ["block", "mount"]),
        ("PluginCapability", "type", ["service", "volume_expansion"]),
        ("ControllerServiceCapability", "type", ["rpc"]),
        ("NodeServiceCapability", "type", ["rpc"]),
        ("GroupControllerServiceCapability", "type", ["rpc"]),
    ],
)
def test_oneof_members(message: str, oneof: str, members: list[str]) -> None:
    group = _message(message).oneofs_by_name[oneof]
    assert [f.name for f in group.fields] == members


ENUM_FACTS: dict[str, dict[str, int]] = {
    "PluginCapability.Service.Type": {
        "UNKNOWN": 0,
        "CONTROLLER_SERVICE": 1,
        "VOLUME_ACCESSIBILITY_CONSTRAINTS": 2,
        "GROUP_CONTROLLER_SERVICE": 3,
        "SNAPSHOT_METADATA_SERVICE": 4,
    },
    "PluginCapability.VolumeExpansion.Type": {"UNKNOWN": 0, "ONLINE": 1, "OFFLINE": 2},
    "ControllerServiceCapability.RPC.Type": {
        "UNKNOWN": 0,
        "CREATE_DELETE_VOLUME": 1,
        "PUBLISH_UNPUBLISH_VOLUME": 2,
        "LIST_VOLUMES": 3,
        "GET_CAPACITY": 4,
        "CREATE_DELETE_SNAPSHOT": 5,
        "LIST_SNAPSHOTS": 6,
        "CLONE_VOLUME": 7,
        "PUBLISH_READONLY": 8,
        "EXPAND_VOLUME": 9,
        "LIST_VOLUMES_PUBLISHED_NODES": 10,
        "VOLUME_CONDITION": 11,
        "GET_VOLUME": 12,
        "SINGLE_NODE_MULTI_WRITER": 13,
        "MODIFY_VOLUME": 14,
        "GET_SNAPSHOT": 15,
    },
    "NodeServiceCapability.RPC.Type": {
        "UNKNOWN": 0,
        "STAGE_UNSTAGE_VOLUME": 1,
        "GET_VOLUME_STATS": 2,
        "EXPAND_VOLUME": 3,
        "VOLUME_CONDITION": 4,
        "SINGLE_NODE_MULTI_WRITER": 5,
        "VOLUME_MOUNT_GROUP": 6,
    },
    "GroupControllerServiceCapability.RPC.Type": {
        "UNKNOWN": 0,
        "CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT": 1,
    },
    "VolumeCapability.AccessMode.Mode": {
        "UNKNOWN": 0,
        "SINGLE_NODE_WRITER": 1,
        "SINGLE_NODE_READER_ONLY": 2,
        "MULTI_NODE_READER_ONLY": 3,
        "MULTI_NODE_SINGLE_WRITER": 4,
        "MULTI_NODE_MULTI_WRITER": 5,
        "SINGLE_NODE_SINGLE_WRITER": 6,
        "SINGLE_NODE_MULTI_WRITER": 7,
    },
    "BlockMetadataType": {"UNKNOWN": 0, "FIXED_LENGTH": 1, "VARIABLE_LENGTH": 2},
}


@pytest.mark.parametrize("enum_name", sorted(ENUM_FACTS))
def test_enum_values(enum_name: str) -> None:
    enum = FILE.pool.FindEnumTypeByName(f"csi.v1.{enum_name}")
    assert {v.name: v.number for v in enum.values} == ENUM_FACTS[enum_name]


def test_extension_numbers() -> None:
    assert csi_pb2.csi_secret.number == 1059
    for ext in (
        csi_pb2.alpha_field,
        csi_pb2.alpha_message,
        csi_pb2.alpha_method,
        csi_pb2.alpha_service,
        csi_pb2.alpha_enum,
        csi_pb2.alpha_enum_value,
    ):
        assert ext.number == 1060


def _all_messages(messages: Any) -> list[descriptor.Descriptor]:
    found: list[descriptor.Descriptor] = []
    for msg in messages:
        found.append(msg)
        found.extend(_all_messages(msg.nested_types))
    return found


def test_every_secrets_map_is_marked_secret() -> None:
    secrets = [
        f
        for m in _all_messages(FILE.message_types_by_name.values())
        for f in m.fields
        if f.name == "secrets"
    ]
    assert len(secrets) == 19
    for field in secrets:
        assert _is_map(field), field.full_name
        assert field.GetOptions().Extensions[csi_pb2.csi_secret], field.full_name


# --- (c) services, methods and streaming --------------------------------------------------------

# service -> [(method, server_streaming)]; no method streams from the client.
SERVICES: dict[str, list[tuple[str, bool]]] = {
    "Identity": [("GetPluginInfo", False), ("GetPluginCapabilities", False), ("Probe", False)],
    "Controller": [
        ("CreateVolume", False),
        ("DeleteVolume", False),
        ("ControllerPublishVolume", False),
        ("ControllerUnpublishVolume", False),
        ("ValidateVolumeCapabilities", False),
        ("ListVolumes", False),
        ("GetCapacity", False),
        ("ControllerGetCapabilities", False),
        ("CreateSnapshot", False),
        ("DeleteSnapshot", False),
        ("ListSnapshots", False),
        ("GetSnapshot", False),
        ("ControllerExpandVolume", False),
        ("ControllerGetVolume", False),
        ("ControllerModifyVolume", False),
    ],
    "GroupController": [
        ("GroupControllerGetCapabilities", False),
        ("CreateVolumeGroupSnapshot", False),
        ("DeleteVolumeGroupSnapshot", False),
        ("GetVolumeGroupSnapshot", False),
    ],
    "SnapshotMetadata": [("GetMetadataAllocated", True), ("GetMetadataDelta", True)],
    "Node": [
        ("NodeStageVolume", False),
        ("NodeUnstageVolume", False),
        ("NodePublishVolume", False),
        ("NodeUnpublishVolume", False),
        ("NodeGetVolumeStats", False),
        ("NodeExpandVolume", False),
        ("NodeGetCapabilities", False),
        ("NodeGetInfo", False),
    ],
}


def test_service_set() -> None:
    assert sorted(FILE.services_by_name) == sorted(SERVICES)


@pytest.mark.parametrize("service_name", sorted(SERVICES))
def test_service_methods(service_name: str) -> None:
    service = FILE.services_by_name[service_name]
    actual = [(m.name, m.client_streaming, m.server_streaming) for m in service.methods]
    assert actual == [(name, False, streams) for name, streams in SERVICES[service_name]]
    for method in service.methods:
        assert method.input_type.full_name == f"csi.v1.{method.name}Request"
        assert method.output_type.full_name == f"csi.v1.{method.name}Response"


class _RecordingChannel:
    """Stands in for grpc.Channel and records which call shape each path gets."""

    def __init__(self) -> None:
        self.calls: dict[str, str] = {}

    def _record(self, shape: str) -> Any:
        def register(path: str, **_: Any) -> None:
            self.calls[path] = shape

        return register

    def __getattr__(self, shape: str) -> Any:
        if shape in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            return self._record(shape)
        raise AttributeError(shape)


@pytest.mark.parametrize("service_name", sorted(SERVICES))
def test_grpc_stub_paths_and_call_shapes(service_name: str) -> None:
    channel = _RecordingChannel()
    getattr(csi_pb2_grpc, f"{service_name}Stub")(channel)
    expected = {
        f"/csi.v1.{service_name}/{name}": "unary_stream" if streams else "unary_unary"
        for name, streams in SERVICES[service_name]
    }
    assert channel.calls == expected
    assert callable(getattr(csi_pb2_grpc, f"add_{service_name}Servicer_to_server"))


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("service", "SnapshotMetadata"),
        ("method", "Controller.GetSnapshot"),
        ("method", "Controller.ControllerGetVolume"),
        ("message", "GetSnapshotRequest"),
        ("message", "VolumeCondition"),
        ("field", "NodeExpandVolumeRequest.secrets"),
        ("field", "GetCapacityResponse.minimum_volume_size"),
    ],
)
def test_alpha_markers(kind: str, name: str) -> None:
    options: Any
    if kind == "service":
        options = FILE.services_by_name[name].GetOptions()
        assert options.Extensions[csi_pb2.alpha_service]
    elif kind == "method":
        service, _, method = name.partition(".")
        options = FILE.services_by_name[service].methods_by_name[method].GetOptions()
        assert options.Extensions[csi_pb2.alpha_method]
    elif kind == "message":
        assert _message(name).GetOptions().Extensions[csi_pb2.alpha_message]
    else:
        assert _field(name).GetOptions().Extensions[csi_pb2.alpha_field]


def test_modify_volume_is_not_alpha() -> None:
    method = FILE.services_by_name["Controller"].methods_by_name["ControllerModifyVolume"]
    assert not method.GetOptions().Extensions[csi_pb2.alpha_method]
    assert (
        not _message("ControllerModifyVolumeRequest").GetOptions().Extensions[csi_pb2.alpha_message]
    )
