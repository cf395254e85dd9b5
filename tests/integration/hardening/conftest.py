"""A lab whose config reaches the local driver through the fault-injection proxy."""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
from collections.abc import Callable, Iterator

import pytest
import yaml

from csi_vm import config, errors, spec
from csi_vm.csi import client as csi_client
from csi_vm.flows import context, engine, offline_disk
from csi_vm.store import db, journal, records
from tests.integration.flows.conftest import MIB, pattern_image
from tests.support import driverproc, faultproxy

SIZE = 4 * MIB
#: seconds per CSI call through the proxy: short, so hangs hit the deadline fast
CALL_TIMEOUT = 0.8


@dataclasses.dataclass
class ProxyLab:
    tmp: pathlib.Path
    driver: driverproc.DriverProcess
    proxy: faultproxy.FaultProxy
    env: context.Env
    want: dict[str, bytes]

    def inventory(self) -> tuple[set[str], set[str]]:
        """What the driver holds, asked directly (never through the proxy)."""
        with csi_client.Client(self.driver.endpoint) as c:
            volumes = {e.volume.volume_id for e in c.list_volumes()}
            try:
                snaps = {s.snapshot_id for s in c.list_snapshots()}
            except errors.Unsupported:
                snaps = set()
        return volumes, snaps

    def referenced(self) -> tuple[set[str], set[str]]:
        return referenced(self.env.store)

    def export(self, vm: str, disk: str) -> bytes:
        out = self.tmp / f"export-{vm}-{disk}.raw"
        out.unlink(missing_ok=True)
        offline_disk.export(self.env, vm=vm, disk=disk, file=out, fmt="raw")
        data = out.read_bytes()
        out.unlink()
        return data

    def assert_consistent(self) -> None:
        """No flow left running, no lock held, no orphan and nothing missing."""
        assert not journal.interrupted(self.env.store)
        assert locks(self.env.store) == 0
        assert self.inventory() == self.referenced(), "orphaned or missing CSI objects"

    def spec(self, name: str) -> spec.VMSpec:
        return vm_spec(name, {d: self.tmp / f"{d}.raw" for d in self.want})


def referenced(store: db.Store) -> tuple[set[str], set[str]]:
    """The CSI objects the store knows about: all that may exist on the driver."""
    volumes = {d.volume_id for vm in records.list_vms(store) for d in vm.disks}
    snaps: set[str] = set()
    for snap in records.list_snapshots(store):
        for d in snap.disks:
            (volumes if d.strategy == "host-copy" else snaps).add(d.object_id)
    return volumes, snaps


def locks(store: db.Store) -> int:
    return int(store.connection().execute("SELECT COUNT(*) FROM vm_locks").fetchone()[0])


def vm_spec(name: str, images: dict[str, pathlib.Path]) -> spec.VMSpec:
    disks = [
        {"name": d, "size": SIZE, "driver": "local", "mode": "block", "source": {"image": str(p)}}
        for d, p in images.items()
    ]
    return spec.VMSpec.model_validate({"name": name, "disks": disks})


def make_proxy_lab(
    tmp: pathlib.Path,
    *,
    without: tuple[str, ...] = (),
    state_dir: pathlib.Path | None = None,
    driver_extra: dict[str, object] | None = None,
) -> ProxyLab:
    drv = driverproc.start_driver(tmp / "driver", without=without, state_dir=state_dir)
    proxy = faultproxy.FaultProxy(
        upstream=drv.endpoint, socket_path=drv.socket_path.parent / "p.sock"
    )
    proxy.start()
    cfg_file = tmp / "config.yaml"
    driver_cfg = {"endpoint": proxy.endpoint, "timeout": CALL_TIMEOUT, **(driver_extra or {})}
    cfg_file.write_text(yaml.safe_dump({"node": "node-a", "drivers": {"local": driver_cfg}}))
    env = context.Env(
        cfg=config.load(cfg_file), store=db.Store(tmp / "csi-vm.db"), state_dir=tmp / "state"
    )
    want = {
        d: pattern_image(tmp / f"{d}.raw", size=SIZE, seed=i)
        for i, d in enumerate(("root", "data"))
    }
    lab = ProxyLab(tmp=tmp, driver=drv, proxy=proxy, env=env, want=want)
    env.report("local")  # probe before any fault: flows then read the cached report
    return lab


@pytest.fixture
def proxy_lab_factory(tmp_path: pathlib.Path) -> Iterator[Callable[..., ProxyLab]]:
    labs: list[ProxyLab] = []

    def factory(
        without: tuple[str, ...] = (),
        state_dir: pathlib.Path | None = None,
        driver_extra: dict[str, object] | None = None,
    ) -> ProxyLab:
        lab = make_proxy_lab(
            tmp_path / f"lab{len(labs)}",
            without=without,
            state_dir=state_dir,
            driver_extra=driver_extra,
        )
        labs.append(lab)
        return lab

    yield factory
    for lab in labs:
        lab.proxy.clear()
        lab.env.close()
        lab.proxy.stop()
        lab.driver.stop()


def settle(lab: ProxyLab) -> bool:
    """After a fault: clear it, then do what `csi-vm resume` does for a dead process.

    A rollback that itself failed (the fault was still on) leaves its flow
    marked as running under this live test process. In production that CLI
    process has exited and the next `csi-vm resume` takes the flow over; here
    the flow is handed to a process known to be gone, then resumed. Returns
    whether `resume` had anything to finish.
    """
    lab.proxy.clear()
    left = _unfinished(lab.env.store)
    if left:
        with lab.env.store.transaction() as cur:
            cur.execute(
                "UPDATE flows SET pid = ? WHERE state IN (?, ?)",
                (_dead_pid(), journal.RUNNING, journal.COMMITTED),
            )
    engine.resume(lab.env)
    return left


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _unfinished(store: db.Store) -> bool:
    row = (
        store.connection()
        .execute(
            "SELECT COUNT(*) FROM flows WHERE state IN (?, ?)", (journal.RUNNING, journal.COMMITTED)
        )
        .fetchone()
    )
    return bool(row[0])
