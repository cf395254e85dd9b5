"""Fuzz the local driver's request handling: every CSI RPC, random fields and random bytes.

The driver must never crash (it answers Probe afterwards), answer every call
with a gRPC status it means (UNKNOWN is what an unhandled exception becomes,
so it is refused), and keep its state consistent: ListVolumes works and every
listed volume can be fetched. Paths in requests stay under the test's own
directory, so a fuzzed NodePublish can never mount over the host.
"""

from __future__ import annotations

import base64
import collections
import pathlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, json_format, message_factory
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.csi.pb import csi_pb2_grpc as pb_grpc
from tests.support import driverproc, reliability

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FD = descriptor.FieldDescriptor
_INTS = {
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
}
_MAX_DEPTH = 3
#: where fuzzed requests may point paths: a directory of the test's own
_FUZZ_ROOT = pathlib.Path("/tmp/csi-vm-fuzz")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[driverproc.DriverProcess]:
    drv = driverproc.start_driver(tmp_path_factory.mktemp("fuzz"))
    _FUZZ_ROOT.mkdir(exist_ok=True)
    yield drv
    drv.stop()


def _methods() -> list[descriptor.MethodDescriptor]:
    return [m for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods]


METHODS = {f"/{m.containing_service.full_name}/{m.name}": m for m in _methods()}


def _string(field: descriptor.FieldDescriptor) -> st.SearchStrategy[str]:
    if "path" in field.name:
        segment = st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=12)
        return st.one_of(st.just(""), segment.map(lambda s: f"{_FUZZ_ROOT}/{s}"))
    return st.one_of(st.text(max_size=40), st.sampled_from(["", "vol-" + "0" * 32, "x" * 200]))


def _scalar(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    kind = field.type
    if kind == FD.TYPE_STRING:
        return _string(field)
    if kind == FD.TYPE_BYTES:
        return st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())  # JSON form
    if kind in _INTS:
        low, high = _INTS[kind]
        return st.integers(low, high)
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind == FD.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([v.number for v in field.enum_type.values])
    if kind == FD.TYPE_MESSAGE:
        return _nested(field, depth)
    return None


def _nested(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    sub = field.message_type
    assert sub is not None
    if sub.file.package == "google.protobuf":
        return None  # well-known types have their own JSON forms; fuzzed as raw bytes
    if sub.GetOptions().map_entry:
        keys = _scalar(sub.fields_by_name["key"], depth)
        values = _scalar(sub.fields_by_name["value"], depth)
        assert keys is not None and values is not None
        return st.dictionaries(keys, values, max_size=3)
    return _message(sub, depth + 1)


def _message(desc: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    if depth > _MAX_DEPTH:
        return st.just({})
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        value = _scalar(field, depth)
        if value is None:
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        repeated = field.is_repeated and not is_map
        optional[field.name] = st.lists(value, max_size=3) if repeated else value
    return st.fixed_dictionaries({}, optional=optional)


def _encode(method: descriptor.MethodDescriptor, fields: dict[str, Any]) -> bytes:
    cls = message_factory.GetMessageClass(method.input_type)
    try:
        msg = json_format.ParseDict(fields, cls(), ignore_unknown_fields=False)
    except json_format.ParseError:
        assume(False)  # two members of one oneof: not a message a client can send
        raise
    return bytes(msg.SerializeToString())


_statuses: collections.Counter[str] = collections.Counter()


def _send(drv: driverproc.DriverProcess, path: str, raw: bytes) -> grpc.StatusCode:
    method = METHODS[path]
    with grpc.insecure_channel(drv.endpoint) as channel:
        try:
            if method.server_streaming:
                list(channel.unary_stream(path, None, None)(raw, timeout=10))
            else:
                channel.unary_unary(path, None, None)(raw, timeout=10)
        except grpc.RpcError as err:
            code: grpc.StatusCode = err.code()
            return code
    return grpc.StatusCode.OK


def _check(drv: driverproc.DriverProcess, path: str, code: grpc.StatusCode) -> None:
    _statuses[code.name] += 1
    assert drv.process is not None and drv.process.poll() is None, "the driver died"
    assert code != grpc.StatusCode.UNKNOWN, f"{path}: unhandled exception in the driver"
    assert code != grpc.StatusCode.DEADLINE_EXCEEDED, f"{path}: the driver hung"


_SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@_SETTINGS
@given(data=st.data())
def test_random_fields_for_every_rpc(driver: driverproc.DriverProcess, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(sorted(METHODS)))
    raw = _encode(METHODS[path], data.draw(_message(METHODS[path].input_type)))
    _check(driver, path, code := _send(driver, path, raw))
    reliability.record("driver-fuzz-fields", _outcome(code))


@_SETTINGS
@given(path=st.sampled_from(sorted(METHODS)), raw=st.binary(max_size=200))
def test_random_bytes_for_every_rpc(
    driver: driverproc.DriverProcess, path: str, raw: bytes
) -> None:
    _check(driver, path, code := _send(driver, path, raw))
    reliability.record("driver-fuzz-raw-bytes", _outcome(code))


def _outcome(code: grpc.StatusCode) -> str:
    return reliability.COMPLETED if code == grpc.StatusCode.OK else reliability.REFUSED


def test_driver_is_consistent_after_fuzzing(driver: driverproc.DriverProcess) -> None:
    with grpc.insecure_channel(driver.endpoint) as channel:
        identity, controller = pb_grpc.IdentityStub(channel), pb_grpc.ControllerStub(channel)
        identity.Probe(pb.ProbeRequest(), timeout=5)
        listed = controller.ListVolumes(pb.ListVolumesRequest(), timeout=10).entries
        for entry in listed:
            got = controller.ControllerGetVolume(
                pb.ControllerGetVolumeRequest(volume_id=entry.volume.volume_id), timeout=5
            )
            assert got.volume.volume_id == entry.volume.volume_id
