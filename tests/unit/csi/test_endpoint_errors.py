"""Endpoint parsing, gRPC error mapping, retry policy and secret redaction (pure logic)."""

from __future__ import annotations

import logging
import os

import grpc
import pytest

from csi_vm import errors
from csi_vm.csi import endpoint, models, retry
from csi_vm.csi import errors as csi_errors


@pytest.mark.parametrize(
    ("given", "target"),
    [
        ("unix:///run/csi/x.sock", "unix:/run/csi/x.sock"),
        ("unix:/run/csi/x.sock", "unix:/run/csi/x.sock"),
        ("/run/csi/x.sock", "unix:/run/csi/x.sock"),
        ("tcp://127.0.0.1:10000", "127.0.0.1:10000"),
        ("tcp://csi.example:443", "csi.example:443"),
        ("tcp://[::1]:9000", "[::1]:9000"),
    ],
    ids=["unix-url", "unix-short", "bare-path", "tcp-ipv4", "tcp-name", "tcp-ipv6"],
)
def test_endpoint_targets(given: str, target: str) -> None:
    assert endpoint.to_target(given) == target


def test_relative_path_becomes_absolute() -> None:
    assert endpoint.to_target("x.sock") == "unix:" + os.path.join(os.getcwd(), "x.sock")


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "http://host:80", "tcp://host", "tcp://host:0", "tcp://host:70000", "unix://"],
    ids=["empty", "blank", "http", "tcp-no-port", "tcp-port-0", "tcp-port-big", "unix-no-path"],
)
def test_bad_endpoints_are_invalid_input(bad: str) -> None:
    with pytest.raises(errors.InvalidInput) as info:
        endpoint.to_target(bad)
    assert "endpoint" in str(info.value)


class _FakeRpcError(grpc.RpcError):
    """A gRPC error as the channel raises it (fake: only code() and details())."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.UNIMPLEMENTED, errors.Unsupported),
        (grpc.StatusCode.INVALID_ARGUMENT, errors.Rejected),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.Rejected),
        (grpc.StatusCode.OUT_OF_RANGE, errors.OutOfRange),
        (grpc.StatusCode.NOT_FOUND, errors.NotFound),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExists),
        (grpc.StatusCode.ABORTED, errors.Busy),
        (grpc.StatusCode.UNAVAILABLE, errors.Unreachable),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.Unreachable),
        (grpc.StatusCode.INTERNAL, errors.OperationFailed),
    ],
    ids=lambda v: v.name if isinstance(v, grpc.StatusCode) else v.__name__,
)
def test_status_codes_map_to_the_error_tree(code: grpc.StatusCode, cls: type[Exception]) -> None:
    err = csi_errors.from_rpc_error(
        _FakeRpcError(code, "boom"), rpc="CreateVolume", target="unix:/x"
    )
    assert isinstance(err, cls)
    assert isinstance(err, csi_errors.CsiCallError)
    assert err.rpc == "CreateVolume"
    assert err.code == code
    assert "CreateVolume on unix:/x failed" in str(err)


def test_transient_codes_are_the_retryable_classes() -> None:
    for code in csi_errors.TRANSIENT_CODES:
        err = csi_errors.from_rpc_error(_FakeRpcError(code, ""), rpc="X", target="t")
        assert isinstance(err, errors.Transient)


def test_long_driver_details_are_cut() -> None:
    err = csi_errors.from_rpc_error(
        _FakeRpcError(grpc.StatusCode.INTERNAL, "x" * 5000), rpc="X", target="t"
    )
    assert len(str(err)) < 400


def test_retry_retries_transient_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise errors.Unreachable("down")
        return "ok"

    policy = retry.RetryPolicy(attempts=4, first_delay=0.2, max_delay=2.0)
    with caplog.at_level(logging.INFO, logger="csi_vm.retry"):
        assert retry.call(flaky, what="Probe on t", policy=policy, sleep=sleeps.append) == "ok"
    assert len(calls) == 3
    assert sleeps == [0.2, 0.4]
    assert "attempt 1/4 failed" in caplog.text
    assert "retrying in 0.4 s" in caplog.text


def test_retry_gives_up_after_the_policy() -> None:
    sleeps: list[float] = []

    def down() -> None:
        raise errors.Busy("in flight")

    with pytest.raises(errors.Busy):
        retry.call(down, what="x", policy=retry.RetryPolicy(attempts=3), sleep=sleeps.append)
    assert len(sleeps) == 2


def test_non_transient_errors_are_not_retried() -> None:
    calls: list[int] = []

    def rejected() -> None:
        calls.append(1)
        raise errors.Rejected("no")

    with pytest.raises(errors.Rejected):
        retry.call(rejected, what="x", policy=retry.RetryPolicy(), sleep=lambda _: None)
    assert calls == [1]


def test_secrets_never_show_in_repr_or_str() -> None:
    secrets = models.Secrets({"password": "canary-7f3a"})
    assert "canary-7f3a" not in repr(secrets)
    assert "canary-7f3a" not in str(secrets)
    assert "canary-7f3a" not in f"{secrets!r} {secrets}"
    assert secrets.reveal() == {"password": "canary-7f3a"}
