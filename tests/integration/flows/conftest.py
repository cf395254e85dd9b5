"""A lab for VM disk flows: the real local driver, a config file, a store, pattern images."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import random
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest
import yaml

from csi_vm import config, errors
from csi_vm.csi import client as csi_client
from csi_vm.flows import context
from csi_vm.store import db
from tests.support import driverproc

MIB = 1024 * 1024


@dataclasses.dataclass
class Lab:
    tmp: pathlib.Path
    driver: driverproc.DriverProcess
    config_file: pathlib.Path
    db_file: pathlib.Path
    state_dir: pathlib.Path
    env: context.Env

    def inventory(self) -> tuple[set[str], set[str]]:
        """Every volume and snapshot on the driver, for orphan checks."""
        with csi_client.Client(self.driver.endpoint) as c:
            volumes = {e.volume.volume_id for e in c.list_volumes()}
            try:
                snaps = {s.snapshot_id for s in c.list_snapshots()}
            except errors.Unsupported:
                snaps = set()
        return volumes, snaps

    def cli_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CSI_VM_CONFIG": str(self.config_file),
            "CSI_VM_DB": str(self.db_file),
            "CSI_VM_STATE_DIR": str(self.state_dir),
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real `csi-vm` command on this lab's config, store and state."""
        return run_cli(self.cli_env(), *args)


def run_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real `csi-vm` command in a child process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "csi_vm", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def make_lab(
    tmp: pathlib.Path, *, without: tuple[str, ...] = (), faults: tuple[str, ...] = ()
) -> Lab:
    extra = [arg for fault in faults for arg in ("--fault", fault)]
    drv = driverproc.start_driver(tmp / "driver", without=without, extra_args=extra)
    cfg_file = tmp / "config.yaml"
    cfg_file.write_text(
        yaml.safe_dump({"node": "node-a", "drivers": {"local": {"endpoint": drv.endpoint}}})
    )
    state = tmp / "state"
    env = context.Env(cfg=config.load(cfg_file), store=db.Store(tmp / "csi-vm.db"), state_dir=state)
    return Lab(
        tmp=tmp,
        driver=drv,
        config_file=cfg_file,
        db_file=tmp / "csi-vm.db",
        state_dir=state,
        env=env,
    )


@pytest.fixture
def lab_factory(tmp_path: pathlib.Path) -> Iterator[object]:
    labs: list[Lab] = []

    def factory(without: tuple[str, ...] = (), faults: tuple[str, ...] = ()) -> Lab:
        lab = make_lab(tmp_path / f"lab{len(labs)}", without=without, faults=faults)
        labs.append(lab)
        return lab

    yield factory
    for lab in labs:
        lab.env.close()
        lab.driver.stop()


def pattern_image(path: pathlib.Path, *, size: int, seed: int, extents: int = 12) -> bytes:
    """A sparse raw image with random data in scattered 64 KiB extents; returns its bytes."""
    rng = random.Random(seed)
    data = bytearray(size)
    for _ in range(extents):
        offset = rng.randrange(0, size // 65536) * 65536
        data[offset : offset + 65536] = rng.randbytes(65536)
    with path.open("wb") as stream:
        stream.truncate(size)
        for offset in range(0, size, 65536):
            chunk = data[offset : offset + 65536]
            if any(chunk):
                stream.seek(offset)
                stream.write(chunk)
    return bytes(data)
