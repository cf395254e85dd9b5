"""kill -9 in the middle of CreateVolume / CreateSnapshot leaves no partial object.

The driver pauses at a named point (CSI_VM_LOCALDRIVER_PAUSE_AT, a test-only
hook) and writes a marker file; the test then kills it with SIGKILL, restarts
it without the hook and checks that nothing half-made is visible or left on disk.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import threading
import time
from collections.abc import Callable

import grpc
import pytest

from csi_vm.localdriver import testhooks
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MARKER_TIMEOUT_S = 30.0


def _wait_for(marker: pathlib.Path) -> None:
    deadline = time.monotonic() + MARKER_TIMEOUT_S
    while not marker.exists():
        assert time.monotonic() < deadline, f"the driver never reached {marker.name}"
        time.sleep(0.02)


def _call_in_background(call: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(grpc.RpcError):  # the driver dies under it: UNAVAILABLE
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _image_files(state_dir: pathlib.Path) -> set[str]:
    return {f"{d}/{name}" for d in ("volumes", "snapshots") for name in os.listdir(state_dir / d)}


def _crash_at(
    tmp_path: pathlib.Path, point: str, call_with: Callable[[csi.Stubs], object]
) -> driverproc.DriverProcess:
    """Start a driver that pauses at `point`, trigger it, kill -9 it, restart it clean."""
    drv = driverproc.start_driver(tmp_path / "driver", env={testhooks.ENV_VAR: point})
    stubs = csi.connect(drv.endpoint)
    thread = _call_in_background(lambda: call_with(stubs))
    _wait_for(drv.state_dir / f"paused-at-{point}")
    drv.kill()
    thread.join(10)
    stubs.close()
    kind = point.split("-", maxsplit=1)[0]  # "volume" or "snapshot"
    half_made = {n for n in _image_files(drv.state_dir) if n.startswith(f"{kind}s/")}
    # The crash did leave a half-made image: a temp file, or an image without a row.
    prefix = ".tmp-" if point.endswith("-temp") else ("vol-" if kind == "volume" else "snap-")
    assert len(half_made) == 1 and half_made.pop().split("/")[1].startswith(prefix)
    drv.env.pop(testhooks.ENV_VAR)
    drv.start()
    return drv


@pytest.mark.parametrize("point", ["volume-temp", "volume-renamed"])
def test_kill_during_create_volume_leaves_nothing(tmp_path: pathlib.Path, point: str) -> None:
    drv = _crash_at(
        tmp_path, point, lambda stubs: csi.create_volume(stubs, "doomed", size=16 * csi.MiB)
    )
    try:
        stubs = csi.connect(drv.endpoint)
        assert csi.list_volume_ids(stubs) == set()
        assert _image_files(drv.state_dir) == set()
        # The name is free again: a retried CreateVolume succeeds.
        vol = csi.create_volume(stubs, "doomed", size=16 * csi.MiB)
        assert csi.list_volume_ids(stubs) == {vol.volume_id}
        stubs.close()
    finally:
        drv.stop()


@pytest.mark.parametrize("point", ["snapshot-temp", "snapshot-renamed"])
def test_kill_during_create_snapshot_leaves_nothing(tmp_path: pathlib.Path, point: str) -> None:
    holder: dict[str, str] = {}

    def snapshot(stubs: csi.Stubs) -> None:
        holder["volume"] = csi.create_volume(stubs, "source", size=16 * csi.MiB).volume_id
        csi.create_snapshot(stubs, "doomed-snap", holder["volume"])

    drv = _crash_at(tmp_path, point, snapshot)
    try:
        stubs = csi.connect(drv.endpoint)
        assert csi.list_volume_ids(stubs) == {holder["volume"]}
        assert csi.list_snapshot_ids(stubs) == set()
        assert _image_files(drv.state_dir) == {f"volumes/{holder['volume']}.img"}
        snap = csi.create_snapshot(stubs, "doomed-snap", holder["volume"])
        assert csi.list_snapshot_ids(stubs) == {snap.snapshot_id}
        stubs.close()
    finally:
        drv.stop()
