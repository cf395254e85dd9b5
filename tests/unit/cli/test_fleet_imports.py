"""vm list and vm show of VMs in the store never load pydantic: they validate no spec.

A fleet's list would otherwise validate every VM's spec again, and each
command pays for importing pydantic and building the spec's models before
its first line.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from csi_vm.store import db
from tests.support import fleet

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    "args",
    [
        ["vm", "list"],
        ["vm", "list", "-o", "json"],
        ["vm", "show", fleet.name(1)],
        ["vm", "show", fleet.name(1), "-o", "yaml"],
    ],
    ids=" ".join,
)
def test_reading_vms_imports_no_pydantic(tmp_path: pathlib.Path, args: list[str]) -> None:
    store = db.Store(tmp_path / "csi-vm.db")
    fleet.seed(store, count=3)
    store.close()
    (tmp_path / "config.yaml").write_text("drivers: {}\n")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "csi_vm", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "CSI_VM_CONFIG": str(tmp_path / "config.yaml"),
            "CSI_VM_DB": str(tmp_path / "csi-vm.db"),
            "CSI_VM_STATE_DIR": str(tmp_path / "state"),
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert fleet.name(1) in done.stdout  # it read the VMs
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "csi_vm.store.records" in imported  # the check sees the command's imports
    assert not {name for name in imported if name.split(".")[0] == "pydantic"}
    assert "csi_vm.spec" not in imported
