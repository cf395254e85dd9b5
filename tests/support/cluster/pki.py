"""Certificates, the service-account key pair and kubeconfigs, made on the spot.

One CA signs every certificate; each component gets a client certificate
whose subject is the user (and organisation the group) that the API server's
RBAC knows it by, as kubeadm names them. The openssl command line does the
cryptography.
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import tempfile

import yaml

_DAYS = "3650"


@dataclasses.dataclass(frozen=True)
class Identity:
    """A client certificate: file stem, user (CN) and group (O)."""

    stem: str
    user: str
    group: str = ""


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _subject(identity: Identity) -> str:
    return f"/CN={identity.user}" + (f"/O={identity.group}" if identity.group else "")


def make_ca(pki: pathlib.Path) -> None:
    if (pki / "ca.crt").is_file():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", str(pki / "ca.key"), "2048")
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(pki / "ca.key"),
        "-subj",
        "/CN=csi-vm-test-cluster-ca",
        "-days",
        _DAYS,
        "-out",
        str(pki / "ca.crt"),
    )


def _sign(pki: pathlib.Path, stem: str, subject: str, extensions: str) -> None:
    if (pki / f"{stem}.crt").is_file():
        return
    key, csr = pki / f"{stem}.key", pki / f"{stem}.csr"
    _openssl("genrsa", "-out", str(key), "2048")
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    with tempfile.NamedTemporaryFile("w", suffix=".ext") as ext:
        ext.write(extensions)
        ext.flush()
        _openssl(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(pki / "ca.crt"),
            "-CAkey",
            str(pki / "ca.key"),
            "-CAcreateserial",
            "-days",
            _DAYS,
            "-extfile",
            ext.name,
            "-out",
            str(pki / f"{stem}.crt"),
        )
    csr.unlink()


def make_client(pki: pathlib.Path, identity: Identity) -> None:
    _sign(
        pki,
        identity.stem,
        _subject(identity),
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )


def make_server(pki: pathlib.Path, stem: str, *, names: list[str], addresses: list[str]) -> None:
    alt = ",".join([*(f"DNS:{n}" for n in names), *(f"IP:{a}" for a in addresses)])
    _sign(
        pki,
        stem,
        f"/CN={names[0]}",
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={alt}\n",
    )


def make_service_account_keys(pki: pathlib.Path) -> None:
    if (pki / "sa.key").is_file():
        return
    _openssl("genrsa", "-out", str(pki / "sa.key"), "2048")
    _openssl("rsa", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub"))


def write_kubeconfig(
    path: pathlib.Path, *, pki: pathlib.Path, identity: Identity, server: str
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "csi-vm-test",
                "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": identity.user,
                "user": {
                    "client-certificate": str(pki / f"{identity.stem}.crt"),
                    "client-key": str(pki / f"{identity.stem}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "csi-vm-test", "context": {"cluster": "csi-vm-test", "user": identity.user}}
        ],
        "current-context": "csi-vm-test",
    }
    write_if_changed(path, yaml.safe_dump(config), mode=0o600)


def write_if_changed(path: pathlib.Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` atomically, and only when its content changes.

    Every `up` writes its files again while kubectl, helm or containerd of
    another process may be reading them: a reader must see the old file or
    the new one, never a half-written one.
    """
    if path.is_file() and path.read_text() == text:
        return
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.chmod(mode)
    partial.replace(path)
