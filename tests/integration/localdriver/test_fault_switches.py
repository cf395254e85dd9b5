"""--fault makes the driver lie one way at a time: what it answers, and what it really did."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator

import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.localdriver import fault_switches
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Ctl = pb.ControllerServiceCapability.RPC.Type
NodeCap = pb.NodeServiceCapability.RPC.Type
Svc = pb.PluginCapability.Service.Type
SIZE = 8 * csi.MiB


def _declared(stubs: csi.Stubs) -> set[str]:
    """Every capability name the driver answers, across its services."""
    plugin = stubs.identity.GetPluginCapabilities(pb.GetPluginCapabilitiesRequest()).capabilities
    names = {Svc.Name(c.service.type) for c in plugin if c.HasField("service")}
    names |= {"ONLINE" for c in plugin if c.HasField("volume_expansion")}
    ctl = stubs.controller.ControllerGetCapabilities(pb.ControllerGetCapabilitiesRequest())
    names |= {Ctl.Name(c.rpc.type) for c in ctl.capabilities}
    node = stubs.node.NodeGetCapabilities(pb.NodeGetCapabilitiesRequest())
    return names | {NodeCap.Name(c.rpc.type) for c in node.capabilities}


def _image(drv: driverproc.DriverProcess, volume_id: str) -> pathlib.Path:
    return drv.state_dir / "volumes" / f"{volume_id}.img"


def _snapshot_image(drv: driverproc.DriverProcess, snapshot_id: str) -> pathlib.Path:
    return drv.state_dir / "snapshots" / f"{snapshot_id}.img"


def _write(path: pathlib.Path, data: bytes) -> None:
    with path.open("r+b") as stream:
        stream.write(data)


def _expand(stubs: csi.Stubs, volume_id: str, size: int) -> int:
    request = pb.ControllerExpandVolumeRequest(
        volume_id=volume_id, capacity_range=pb.CapacityRange(required_bytes=size)
    )
    return stubs.controller.ControllerExpandVolume(request).capacity_bytes


def _serve_snapshot(stubs: csi.Stubs, vol: str) -> object:
    return csi.create_snapshot(stubs, "undeclared-snap", vol)


def _serve_clone(stubs: csi.Stubs, vol: str) -> object:
    source = pb.VolumeContentSource(volume=pb.VolumeContentSource.VolumeSource(volume_id=vol))
    return csi.create_volume(stubs, "undeclared-clone", size=SIZE, source=source)


def _serve_group(stubs: csi.Stubs, vol: str) -> object:
    request = pb.CreateVolumeGroupSnapshotRequest(name="undeclared-g", source_volume_ids=[vol])
    return stubs.group.CreateVolumeGroupSnapshot(request)


def _serve_modify(stubs: csi.Stubs, vol: str) -> object:
    request = pb.ControllerModifyVolumeRequest(volume_id=vol, mutable_parameters={"tier": "fast"})
    return stubs.controller.ControllerModifyVolume(request)


# Each switch: the names it hides, and a call the driver must still answer.
UNDECLARED: dict[str, tuple[set[str], Callable[[csi.Stubs, str], object]]] = {
    "snapshot": ({"CREATE_DELETE_SNAPSHOT", "SNAPSHOT_METADATA_SERVICE"}, _serve_snapshot),
    "clone": ({"CLONE_VOLUME"}, _serve_clone),
    "expansion": ({"EXPAND_VOLUME", "ONLINE"}, lambda s, v: _expand(s, v, 2 * SIZE)),
    "group-snapshot": ({"GROUP_CONTROLLER_SERVICE"}, _serve_group),
    "modify": ({"MODIFY_VOLUME"}, _serve_modify),
    "stage-unstage": ({"STAGE_UNSTAGE_VOLUME"}, lambda s, v: None),
    "stats": ({"GET_VOLUME_STATS"}, lambda s, v: None),
}


@pytest.fixture
def start(
    tmp_path: pathlib.Path,
) -> Iterator[Callable[[str], tuple[driverproc.DriverProcess, csi.Stubs]]]:
    running: list[tuple[driverproc.DriverProcess, csi.Stubs]] = []

    def make(fault: str) -> tuple[driverproc.DriverProcess, csi.Stubs]:
        drv = driverproc.start_driver(tmp_path / fault, extra_args=("--fault", fault))
        running.append((drv, csi.connect(drv.endpoint)))
        return running[-1]

    yield make
    for drv, stubs in running:
        stubs.close()
        drv.stop()


@pytest.mark.parametrize("feature", sorted(UNDECLARED), ids=lambda f: f"undeclared-{f}")
def test_undeclared_feature_is_hidden_but_served(
    feature: str, start: Callable[[str], tuple[driverproc.DriverProcess, csi.Stubs]]
) -> None:
    hidden, serve = UNDECLARED[feature]
    _, stubs = start(f"undeclared-{feature}")
    assert not hidden & _declared(stubs)
    vol = csi.create_volume(stubs, "served", size=SIZE, cap=csi.block_cap()).volume_id
    serve(stubs, vol)  # answered, not UNIMPLEMENTED


def test_expand_no_grow_answers_a_size_it_did_not_make(
    start: Callable[[str], tuple[driverproc.DriverProcess, csi.Stubs]],
) -> None:
    drv, stubs = start("expand-no-grow")
    vol = csi.create_volume(stubs, "stuck", size=SIZE, cap=csi.block_cap()).volume_id
    assert _expand(stubs, vol, 2 * SIZE) == 2 * SIZE
    assert os.stat(_image(drv, vol)).st_size == SIZE


@pytest.mark.parametrize("fault", ["clone-blank", "snapshot-blank", "restore-blank"])
def test_blank_copies_answer_ready_without_the_data(
    fault: str, start: Callable[[str], tuple[driverproc.DriverProcess, csi.Stubs]]
) -> None:
    drv, stubs = start(fault)
    vol = csi.create_volume(stubs, "src", size=SIZE, cap=csi.block_cap()).volume_id
    _write(_image(drv, vol), b"csi-vm data")
    if fault == "clone-blank":
        source = pb.VolumeContentSource(volume=pb.VolumeContentSource.VolumeSource(volume_id=vol))
    else:
        snap = csi.create_snapshot(stubs, "snap", vol)
        assert snap.ready_to_use
        # restore-blank keeps the snapshot's data: only the restore lies
        kept = _snapshot_image(drv, snap.snapshot_id).read_bytes()[:11]
        assert kept == (b"csi-vm data" if fault == "restore-blank" else bytes(11))
        source = pb.VolumeContentSource(
            snapshot=pb.VolumeContentSource.SnapshotSource(snapshot_id=snap.snapshot_id)
        )
    copy = csi.create_volume(stubs, "copy", size=SIZE, cap=csi.block_cap(), source=source)
    assert copy.capacity_bytes == SIZE
    assert _image(drv, copy.volume_id).read_bytes()[:11] == bytes(11)


def test_oversize_reports_more_than_the_device_holds(
    start: Callable[[str], tuple[driverproc.DriverProcess, csi.Stubs]],
) -> None:
    drv, stubs = start("oversize")
    vol = csi.create_volume(stubs, "big", size=SIZE, cap=csi.block_cap())
    assert vol.capacity_bytes == SIZE
    assert (
        os.stat(_image(drv, vol.volume_id)).st_size == SIZE - SIZE // fault_switches.OVERSIZE_SHARE
    )


def test_unknown_fault_is_one_clear_error(tmp_path: pathlib.Path) -> None:
    args = ["--endpoint", f"unix://{tmp_path}/x.sock", "--state-dir", str(tmp_path)]
    done = driverproc.run_to_exit([*args, "--node-id", "n", "--fault", "lie-a-lot"])
    assert done.returncode == 2
    assert "--fault 'lie-a-lot': unknown fault" in done.stderr
    assert "expand-no-grow" in done.stderr
    assert "Traceback" not in done.stderr
