"""The launcher's on-disk record of a started VM, and libvirt state and error mapping."""

from __future__ import annotations

import pathlib

import libvirt
import pytest

from csi_vm import errors
from launcher import libvirt_conn, vmrecord

State = libvirt_conn.DomainState


def test_record_round_trip(tmp_path: pathlib.Path) -> None:
    disk = vmrecord.DiskRecord(
        volume_id="v1", target="vda", block=True, staging_path="/s", publish_path="/p"
    )
    record = vmrecord.VmRecord(name="vm", uri="qemu:///system").with_disk(disk)
    vmrecord.save(tmp_path / "r.json", record)
    assert vmrecord.load(tmp_path / "r.json") == record


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, errors.NotFound),
        ("{not json", errors.DataSafetyError),
        ('{"version": 99}', errors.DataSafetyError),
    ],
    ids=["missing", "corrupt", "future-version"],
)
def test_bad_records(tmp_path: pathlib.Path, content: str | None, error: type[Exception]) -> None:
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(error):
        vmrecord.load(path)


class _FakeError(libvirt.libvirtError):  # type: ignore[misc]
    def __init__(self, code: int, domain: int = 0) -> None:
        Exception.__init__(self, "boom")
        self._code, self._domain = code, domain

    def get_error_code(self) -> int:
        return self._code

    def get_error_domain(self) -> int:
        return self._domain

    def get_error_message(self) -> str:
        return "boom"


@pytest.mark.parametrize(
    ("code", "domain", "expected"),
    [
        (libvirt.VIR_ERR_NO_DOMAIN, 0, errors.NotFound),
        (libvirt.VIR_ERR_DOM_EXIST, 0, errors.AlreadyExists),
        (libvirt.VIR_ERR_XML_ERROR, 0, errors.InvalidInput),
        (libvirt.VIR_ERR_OPERATION_INVALID, 0, errors.Rejected),
        (libvirt.VIR_ERR_OPERATION_UNSUPPORTED, 0, errors.Unsupported),
        (libvirt.VIR_ERR_OPERATION_TIMEOUT, 0, errors.Busy),
        (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, errors.Unreachable),
        (libvirt.VIR_ERR_INTERNAL_ERROR, 0, errors.OperationFailed),
    ],
    ids=["no-domain", "exists", "xml", "wrong-state", "unsupported", "job-lock", "rpc", "other"],
)
def test_libvirt_errors_map_by_code(
    code: int, domain: int, expected: type[errors.CsiVmError]
) -> None:
    mapped = libvirt_conn.map_error(_FakeError(code, domain), what="start vm on qemu:///system")
    assert type(mapped) is expected
    assert str(mapped).startswith("start vm on qemu:///system: boom")


@pytest.mark.parametrize(
    ("status", "active", "crashed"),
    [
        (libvirt_conn.DomainStatus(State.RUNNING, "booted"), True, False),
        (libvirt_conn.DomainStatus(State.PAUSED, "migration"), True, False),
        (libvirt_conn.DomainStatus(State.SHUTOFF, "destroyed"), False, False),
        (libvirt_conn.DomainStatus(State.SHUTOFF, "crashed"), False, True),
        (libvirt_conn.DomainStatus(State.CRASHED, "panicked"), False, True),
    ],
    ids=["running", "paused", "destroyed", "qemu-died", "guest-panic"],
)
def test_domain_status(status: libvirt_conn.DomainStatus, active: bool, crashed: bool) -> None:
    assert (status.active, status.crashed) == (active, crashed)
