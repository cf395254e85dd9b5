"""A launcher Pod's TLS certificate, signed with the real openssl from a CA made here."""

from __future__ import annotations

import pathlib
import stat
import subprocess

import pytest

from csi_vm import errors
from csi_vm.agent import podtls
from csi_vm.crd import vmpod


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A CA as the chart's Secret mounts it: tls.crt and tls.key."""
    where = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=test migration CA", "-keyout", str(where / podtls.CA_KEY),
         "-out", str(where / podtls.CA_CERT)],
        check=True, capture_output=True,
    )  # fmt: skip
    return where


def _text(cert: pathlib.Path) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-text"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def test_a_pods_certificate_names_its_ip_serves_and_connects(
    ca: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    assert podtls.ensure(ca, tmp_path, uid="uid-1", ip="10.244.1.7", name="web-launcher")
    tls = tmp_path / vmpod.TLS_DIR
    text = _text(tls / "cert.pem")
    assert "IP Address:10.244.1.7" in text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    assert "CA:FALSE" in text
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tls / "ca.pem"), str(tls / "cert.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # Only root on the node reads the key; the launcher waits for its own uid.
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    assert (tls / "ready").read_text().strip() == "uid-1"
    assert not list(tls.glob("tmp*")), "the signing work directory is left behind"


def test_the_same_pod_keeps_its_certificate_and_a_new_one_gets_its_own(
    ca: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    assert podtls.ensure(ca, tmp_path, uid="uid-1", ip="10.244.1.7", name="web-launcher")
    first = (tmp_path / vmpod.TLS_DIR / "cert.pem").read_bytes()
    assert not podtls.ensure(ca, tmp_path, uid="uid-1", ip="10.244.1.7", name="web-launcher")
    assert (tmp_path / vmpod.TLS_DIR / "cert.pem").read_bytes() == first
    # A new Pod in the same run directory: another IP, never the old certificate.
    assert podtls.ensure(ca, tmp_path, uid="uid-2", ip="10.244.0.9", name="web-launcher")
    assert "IP Address:10.244.0.9" in _text(tmp_path / vmpod.TLS_DIR / "cert.pem")
    assert (tmp_path / vmpod.TLS_DIR / "ready").read_text().strip() == "uid-2"


def test_a_ca_that_cannot_sign_says_so(ca: pathlib.Path, tmp_path: pathlib.Path) -> None:
    broken = tmp_path / "ca"
    broken.mkdir()
    (broken / podtls.CA_CERT).write_bytes((ca / podtls.CA_CERT).read_bytes())
    (broken / podtls.CA_KEY).write_text("not a key\n")
    with pytest.raises(errors.OperationFailed, match="openssl x509 failed"):
        podtls.ensure(broken, tmp_path / "run", uid="u", ip="10.0.0.1", name="p")
    assert not (tmp_path / "run" / vmpod.TLS_DIR / "ready").exists()
