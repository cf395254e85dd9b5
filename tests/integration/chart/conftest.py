"""The chart rendered by the real helm binary (fetched by `tests.support.helmbin`)."""

from __future__ import annotations

import pathlib
import subprocess

import pytest
import yaml

from tests.support import helmbin

CHART = pathlib.Path(__file__).resolve().parents[3] / "charts" / "csi-vm"
#: The defaults and the driver name, which the chart refuses to guess.
DEFAULTS = pathlib.Path(__file__).resolve().with_name("defaults-values.yaml")
#: Values sets every check runs on: the defaults and the chart's ci/ files.
VALUES: dict[str, pathlib.Path] = {
    "defaults": DEFAULTS,
    **{p.stem: p for p in sorted((CHART / "ci").glob("*.yaml"))},
}


@pytest.fixture(scope="session")
def helm() -> pathlib.Path:
    # Never skipped: without helm, the chart is unchecked and the tests say why.
    return helmbin.helm()


def run_helm(helm: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def render(helm: pathlib.Path, values: pathlib.Path | None, *extra: str) -> list[dict]:  # type: ignore[type-arg]
    args = ["template", "release", str(CHART), "--namespace", "csi-vm", "--include-crds"]
    if values is not None:
        args += ["-f", str(values)]
    done = run_helm(helm, *args, *extra)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def crds() -> list[dict]:  # type: ignore[type-arg]
    return [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.yaml"))]
