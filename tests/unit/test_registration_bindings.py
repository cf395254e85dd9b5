"""The kubelet plugin-registration bindings speak what the kubelet's plugin watcher expects.

Regeneration from the .proto is checked with the CSI bindings
(test_proto_bindings.py); here the wire facts: package, service paths, and
field numbers and types.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor

from csi_vm.csi.pb import pluginregistration_pb2, pluginregistration_pb2_grpc

pytestmark = pytest.mark.timeout(30)

FILE = pluginregistration_pb2.DESCRIPTOR
_T = descriptor.FieldDescriptor


def test_package_has_no_version_suffix() -> None:
    # The kubelet dials /pluginregistration.Registration/..., not .../v1.Registration.
    assert FILE.package == "pluginregistration"
    assert FILE.GetOptions().go_package == "k8s.io/kubelet/pkg/apis/pluginregistration/v1"


@pytest.mark.parametrize(
    ("path", "number", "type_", "repeated"),
    [
        ("PluginInfo.type", 1, _T.TYPE_STRING, False),
        ("PluginInfo.name", 2, _T.TYPE_STRING, False),
        ("PluginInfo.endpoint", 3, _T.TYPE_STRING, False),
        ("PluginInfo.supported_versions", 4, _T.TYPE_STRING, True),
        ("RegistrationStatus.plugin_registered", 1, _T.TYPE_BOOL, False),
        ("RegistrationStatus.error", 2, _T.TYPE_STRING, False),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_field(path: str, number: int, type_: int, repeated: bool) -> None:
    message, _, name = path.partition(".")
    field = FILE.message_types_by_name[message].fields_by_name[name]
    assert (field.number, field.type, field.is_repeated) == (number, type_, repeated)


@pytest.mark.parametrize("message", ["InfoRequest", "RegistrationStatusResponse"])
def test_empty_messages(message: str) -> None:
    assert not FILE.message_types_by_name[message].fields


def test_service_methods() -> None:
    service = FILE.services_by_name["Registration"]
    shapes = [(m.name, m.input_type.name, m.output_type.name) for m in service.methods]
    assert shapes == [
        ("GetInfo", "InfoRequest", "PluginInfo"),
        ("NotifyRegistrationStatus", "RegistrationStatus", "RegistrationStatusResponse"),
    ]
    assert not any(m.client_streaming or m.server_streaming for m in service.methods)


class _RecordingChannel:
    """Stands in for grpc.Channel and records the path each stub method is bound to."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def unary_unary(self, path: str, **_: Any) -> None:
        self.paths.append(path)


def test_stub_paths() -> None:
    channel = _RecordingChannel()
    pluginregistration_pb2_grpc.RegistrationStub(channel)  # type: ignore[call-overload]
    assert channel.paths == [
        "/pluginregistration.Registration/GetInfo",
        "/pluginregistration.Registration/NotifyRegistrationStatus",
    ]
