"""Each command imports only what it uses: no Kubernetes client, libvirt or
jsonschema for commands that never talk to a cluster, a VM or a schema.

The real `csi-vm` runs in a subprocess under ``python -X importtime``, which
names every module the process imported, whenever it was imported.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tomllib

import pytest

import csi_vm
from csi_vm.store import db
from tests.support import fleet

pytestmark = pytest.mark.timeout(120)

HEAVY = frozenset({"kubernetes", "libvirt", "jsonschema"})
#: what `csi-vm --help` and `version` must do without: the group is plain click
FRAMEWORK = frozenset({"typer", "pydantic", "rich"})
#: typer checks option values through pydantic; csi-vm answers the common ones itself
PYDANTIC = frozenset({"pydantic"})
#: `vm list` and `vm show` read a page of the store: plain click, no flow
#: machinery (the engine and its logging), no rich in a pipe; yaml only reads
#: the config, or writes -o yaml
VM_READ = HEAVY | FRAMEWORK | frozenset({"launcher", "grpc", "logging", "csi_vm.flows"})


def _imported(
    args: list[str], tmp: pathlib.Path, *, exit_code: int = 0, depth: int = 1
) -> set[str]:
    """The names, to `depth` parts (csi_vm.flows), of every module `csi-vm ARGS` imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "csi_vm", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CSI_VM_STATE_DIR": str(tmp / "state")},
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert done.returncode == exit_code, done.stderr[-2000:]
    assert lines, "python -X importtime printed nothing"
    names = (line.rsplit("|", 1)[1].strip().split(".") for line in lines[1:])
    return {".".join(parts[:n]) for parts in names for n in range(1, depth + 1)}


def _files(tmp: pathlib.Path) -> dict[str, str]:
    config = tmp / "config.yaml"
    config.write_text("drivers: {}\n")
    image = tmp / "small.raw"
    image.write_bytes(b"\1" * 4096)
    return {"config": str(config), "db": str(tmp / "csi-vm.db"), "image": str(image)}


@pytest.mark.parametrize(
    ("args", "forbidden"),
    [
        (["--help"], HEAVY | FRAMEWORK),
        (["version"], HEAVY | FRAMEWORK),
        (["vm", "--help"], HEAVY | PYDANTIC | {"markdown_it", "yaml"}),
        (["disk", "--help"], HEAVY | PYDANTIC),
        (["snapshot", "--help"], HEAVY | PYDANTIC),
        (["clone", "--help"], HEAVY | PYDANTIC),
        (["resume", "--help"], HEAVY),
        (["migrate", "--help"], HEAVY | PYDANTIC),
        (["capabilities", "--help"], HEAVY | PYDANTIC | {"grpc", "rich", "yaml"}),
        (["capabilities", "probe", "--help"], HEAVY | PYDANTIC | {"grpc", "rich"}),
        (["capabilities", "cluster", "--help"], HEAVY),
        (["image", "--help"], HEAVY | FRAMEWORK | {"yaml"}),
        (["image", "copy", "{image}", "{image}.copy", "--dry-run"], HEAVY | FRAMEWORK | {"yaml"}),
        (["image", "copy", "{image}", "{image}.copy"], HEAVY | FRAMEWORK | {"yaml"}),
        (["quickstart", "--help"], HEAVY | PYDANTIC | {"grpc", "rich"}),
        (["controller", "--help"], HEAVY | {"prometheus_client"}),
        (["node-agent", "--help"], HEAVY | PYDANTIC),
        (["localdriver", "--help"], HEAVY | PYDANTIC | {"grpc", "rich"}),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else "",
)
def test_command_leaves_out_what_it_does_not_use(
    args: list[str], forbidden: frozenset[str], tmp_path: pathlib.Path
) -> None:
    filled = [arg.format(**_files(tmp_path)) for arg in args]
    assert sorted(_imported(filled, tmp_path) & forbidden) == []


VM_READ_LINES = {
    "list": (["vm", "list"], VM_READ),
    "list-wide": (["vm", "list", "-o", "wide", "--no-headers"], VM_READ),
    "list-json": (["vm", "list", "-o", "json"], VM_READ),
    "list-name": (["vm", "list", "-o", "name"], VM_READ),
    "show": (["vm", "show", "vm-000001"], VM_READ),
    "show-json": (["vm", "show", "vm-000001", "-o", "json"], VM_READ),
    "list-help": (["vm", "list", "--help"], VM_READ | {"yaml"}),
    "show-help": (["vm", "show", "--help"], VM_READ | {"yaml"}),
}


@pytest.mark.parametrize(("args", "forbidden"), VM_READ_LINES.values(), ids=VM_READ_LINES.keys())
def test_vm_list_and_show_load_neither_typer_nor_flows(
    args: list[str], forbidden: frozenset[str], tmp_path: pathlib.Path
) -> None:
    files = _files(tmp_path)
    store = db.Store(pathlib.Path(files["db"]))
    fleet.seed(store, count=3)
    store.close()
    store_args = ["--config", files["config"], "--db", files["db"]]
    line = args if "--help" in args else [*args, *store_args]
    assert sorted(_imported(line, tmp_path, depth=2) & forbidden) == []


def test_the_check_sees_imports_a_command_makes(tmp_path: pathlib.Path) -> None:
    # The controller runs against a cluster: it imports the client before it
    # finds the kubeconfig missing (exit 2), so an empty intersection above
    # means the module was not imported.
    missing = ["controller", "run", "--kubeconfig", str(tmp_path / "none")]
    assert "kubernetes" in _imported(missing, tmp_path, exit_code=2)


def test_the_version_is_the_one_pyproject_releases() -> None:
    pyproject = pathlib.Path(__file__).parents[3] / "pyproject.toml"
    released = tomllib.loads(pyproject.read_text())["project"]["version"]
    assert csi_vm.__version__ == released
    done = subprocess.run(
        [sys.executable, "-m", "csi_vm", "version"], capture_output=True, text=True, check=True
    )
    assert done.stdout == f"csi-vm {released}\n"
