"""API failures become csi-vm errors with messages that say what to do (fake API server)."""

from __future__ import annotations

import contextlib
import logging
import pathlib
import socket
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from csi_vm import errors
from csi_vm.csi import retry
from csi_vm.kube import api as kube_api
from csi_vm.kube import errors as kube_errors
from csi_vm.kube import kubeconfig
from tests.support import fakekube

from .conftest import QUICK

pytestmark = pytest.mark.fake


def test_fake_api_forbidden_names_resource_and_rbac(
    fake: fakekube.FakeKube, api: kube_api.Api
) -> None:
    fake.forbid("csinodes")
    with pytest.raises(errors.Rejected) as info:
        api.csi_nodes()
    err = info.value
    assert not isinstance(err, errors.Transient)
    assert "list csinodes.storage.k8s.io" in err.message
    assert "HTTP 403" in err.message
    assert fakekube.USER in err.message  # the API server's own words: who was refused
    assert err.hint is not None
    assert "RBAC" in err.hint
    assert "kubectl auth can-i list csinodes.storage.k8s.io" in err.hint
    # Refusals are final: asked once, not retried.
    assert len([r for r in fake.requests if r.path.endswith("/csinodes")]) == 1


def test_fake_api_bad_token_is_rejected_with_credentials_hint(
    fake: fakekube.FakeKube, tmp_path: pathlib.Path
) -> None:
    config = fake.kubeconfig(tmp_path / "kubeconfig", token="sha256~not-accepted-4711")
    api = kube_api.connect(kubeconfig_file=config, policy=QUICK)
    with api, pytest.raises(errors.Rejected) as info:
        api.storage_classes()
    assert "HTTP 401" in info.value.message
    assert info.value.hint is not None
    assert "credentials" in info.value.hint
    assert "4711" not in str(info.value)  # the token itself never reaches a message


def test_fake_api_connection_refused_is_unreachable(tmp_path: pathlib.Path) -> None:
    port = _free_port()
    config = fakekube.write_kubeconfig(
        tmp_path / "kubeconfig", server=f"http://127.0.0.1:{port}", token="t"
    )
    sleeps: list[float] = []
    api = kube_api.Api(
        _client(config), server=f"http://127.0.0.1:{port}", policy=QUICK, sleep=sleeps.append
    )
    with api, pytest.raises(errors.Unreachable) as info:
        api.csi_drivers()
    assert f"127.0.0.1:{port}" in info.value.message
    assert "Connection refused" in info.value.message
    assert "HTTPConnection(" not in info.value.message
    assert info.value.hint is not None
    assert "reachable" in info.value.hint
    assert len(sleeps) == QUICK.attempts - 1  # retried, as a restarting server deserves


def test_fake_api_server_that_never_answers_times_out(tmp_path: pathlib.Path) -> None:
    with _silent_server() as port:
        server = f"http://127.0.0.1:{port}"
        config = fakekube.write_kubeconfig(tmp_path / "kubeconfig", server=server, token="t")
        api = kube_api.Api(_client(config), server=server, timeout=0.3, policy=retry.NO_RETRY)
        with api, pytest.raises(errors.Unreachable) as info:
            api.storage_classes()
    assert "timed out" in info.value.message


def test_fake_api_transient_errors_are_retried_and_logged(
    fake: fakekube.FakeKube, api: kube_api.Api, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_next(503, times=2, plural="csidrivers")
    with caplog.at_level(logging.INFO, logger="csi_vm.retry"):
        assert len(api.csi_drivers()) == 3
    assert "attempt 1/3" in caplog.text
    assert "attempt 2/3" in caplog.text


def test_fake_api_persistent_server_errors_give_up(
    fake: fakekube.FakeKube, api: kube_api.Api
) -> None:
    fake.fail_next(500, times=10)
    with pytest.raises(errors.Transient) as info:
        api.storage_classes()
    assert "HTTP 500" in info.value.message


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "BadRequest", errors.InvalidInput),
        (404, "NotFound", errors.NotFound),
        (409, "AlreadyExists", errors.AlreadyExists),
        (409, "Conflict", errors.Busy),
        (422, "Invalid", errors.InvalidInput),
        (429, "TooManyRequests", errors.Busy),
        (500, "InternalError", errors.Transient),
        (503, "ServiceUnavailable", errors.Unreachable),
        (418, "Teapot", errors.OperationFailed),
    ],
    ids=["400", "404", "409-exists", "409-conflict", "422", "429", "500", "503", "other"],
)
def test_status_mapping(status: int, reason: str, expected: type[errors.CsiVmError]) -> None:
    body = f'{{"kind":"Status","reason":"{reason}","message":"{"x" * 1000}","code":{status}}}'
    err = kube_errors.from_status(
        status=status, body=body, verb="get", what="storageclasses.storage.k8s.io", server="s"
    )
    assert type(err) is expected
    assert len(err.message) < 400  # long bodies are cut, they may echo request data


def test_plain_text_404_of_a_missing_api_is_not_found() -> None:
    err = kube_errors.from_status(
        status=404, body="404 page not found", verb="list", what="widgets.example.com", server="s"
    )
    assert isinstance(err, errors.NotFound)
    assert "404 page not found" in err.message


# -- where the configuration comes from ---------------------------------------


def test_no_configuration_anywhere_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.InvalidInput) as info:
        kubeconfig.load(kubeconfig=None, environ={}, home=tmp_path)
    assert "no Kubernetes configuration found" in info.value.message
    assert info.value.hint is not None
    assert "--kubeconfig" in info.value.hint


def test_missing_kubeconfig_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.InvalidInput, match="does not exist"):
        kubeconfig.load(kubeconfig=tmp_path / "nope", environ={}, home=tmp_path)


def test_broken_kubeconfig_file_is_invalid_input(tmp_path: pathlib.Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    with pytest.raises(errors.InvalidInput, match="cannot use Kubernetes configuration"):
        kubeconfig.load(kubeconfig=broken, environ={}, home=tmp_path)


def test_unknown_context_is_invalid_input(tmp_path: pathlib.Path) -> None:
    config = fakekube.write_kubeconfig(tmp_path / "kc", server="http://10.1.1.1:6443", token="t")
    assert kubeconfig.load(kubeconfig=config, context="fake").host == "http://10.1.1.1:6443"
    with pytest.raises(errors.InvalidInput, match="prod"):
        kubeconfig.load(kubeconfig=config, context="prod")


def test_kubeconfig_env_and_home_default(tmp_path: pathlib.Path) -> None:
    from_env = fakekube.write_kubeconfig(tmp_path / "env", server="http://10.1.1.1:6443", token="t")
    cfg = kubeconfig.load(kubeconfig=None, environ={"KUBECONFIG": str(from_env)}, home=tmp_path)
    assert cfg.host == "http://10.1.1.1:6443"
    (tmp_path / ".kube").mkdir()
    fakekube.write_kubeconfig(
        tmp_path / ".kube" / "config", server="http://10.2.2.2:6443", token="t"
    )
    cfg = kubeconfig.load(kubeconfig=None, environ={}, home=tmp_path)
    assert cfg.host == "http://10.2.2.2:6443"
    assert cfg.retries is False  # retries belong to csi-vm's own logged loop


def test_in_cluster_without_service_account_is_invalid_input(tmp_path: pathlib.Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    # The service account files are absent on a test machine, as outside any pod.
    with pytest.raises(errors.InvalidInput, match="service account"):
        kubeconfig.load(kubeconfig=None, environ=env, home=tmp_path)


def _client(config: pathlib.Path) -> k8s.ApiClient:
    cfg = kubeconfig.load(kubeconfig=config)
    return k8s.ApiClient(cfg)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A socket that accepts connections (in its backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]
