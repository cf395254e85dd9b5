"""A launcher Pod's TLS key and certificate, made by its node's agent before libvirtd starts.

Live migration between launcher Pods goes from one Pod's libvirtd to the
other's over TLS (port `csi_vm.crd.vmpod.TLS_PORT`), and qemu's migration
and NBD streams use TLS too. Each Pod gets one key and one certificate,
signed by the chart's migration CA (a Secret only the node agents mount),
for both ends: as a server it names the Pod's IP (what the peer connects
to, so hostname checks pass), as a client it is what the other libvirtd
and qemu require. The CA's key never enters a launcher Pod: a guest that
broke out of its qemu gets its own Pod's key, not the power to mint more.

The files go into the Pod's run directory on the node (`TLS_DIR`), ``ready``
last, holding the Pod's uid: the launcher waits for its own uid there, so a
new Pod in a directory an older one left never starts with the older
Pod's certificate (another IP).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import tempfile

from csi_vm import errors
from csi_vm.crd import vmpod

Json = dict[str, object]
#: the CA the chart makes, as a kubernetes.io/tls Secret mounts it
CA_CERT, CA_KEY = "tls.crt", "tls.key"
_DAYS = "3650"
_TIMEOUT_S = 60


def ensure(ca_dir: pathlib.Path, run_dir: pathlib.Path, *, uid: str, ip: str, name: str) -> bool:
    """The Pod's key and certificate in ``run_dir``; True when they were made now.

    ``uid``, ``ip``, ``name``: the Pod's, as the API server reports them.
    """
    tls = run_dir / vmpod.TLS_DIR
    ready = tls / "ready"
    with contextlib.suppress(FileNotFoundError):
        if ready.read_text().strip() == uid:
            return False
    tls.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tls) as work:
        _mint(ca_dir, pathlib.Path(work), ip=ip, name=name)
        for part in ("key.pem", "cert.pem", "ca.pem"):
            os.replace(pathlib.Path(work) / part, tls / part)
    (tls / "ready.new").write_text(uid + "\n")
    os.replace(tls / "ready.new", ready)
    return True


def _mint(ca_dir: pathlib.Path, work: pathlib.Path, *, ip: str, name: str) -> None:
    # Server and client in one certificate: libvirtd and qemu check the key
    # purpose of each role, and a Pod is both (target now, source later).
    ext = work / "ext.cnf"
    ext.write_text(
        "[leaf]\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth, clientAuth\n"
        f"subjectAltName = IP:{ip}\n"
    )
    key, req, cert = work / "key.pem", work / "req.pem", work / "cert.pem"
    old = os.umask(0o077)
    try:
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                 "-subj", f"/O=csi-vm/CN={name[:64]}", "-out", str(req))  # fmt: skip
    finally:
        os.umask(old)
    _openssl(
        "x509", "-req", "-in", str(req), "-CA", str(ca_dir / CA_CERT),
        "-CAkey", str(ca_dir / CA_KEY), "-set_serial", str(int.from_bytes(os.urandom(16), "big")),
        "-days", _DAYS, "-extfile", str(ext), "-extensions", "leaf", "-out", str(cert),
    )  # fmt: skip
    (work / "ca.pem").write_bytes((ca_dir / CA_CERT).read_bytes())


def _openssl(*args: str) -> None:
    try:
        subprocess.run(
            ["openssl", *args], check=True, capture_output=True, text=True, timeout=_TIMEOUT_S
        )
    except FileNotFoundError as err:
        raise errors.Unsupported("openssl is not installed: launcher certificates need it") from err
    except subprocess.CalledProcessError as err:
        raise errors.OperationFailed(f"openssl {args[0]} failed: {err.stderr.strip()}") from err
