"""--without removes one feature as a driver lacking it would; --advertise-broken keeps it
advertised while its RPCs fail."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Iterator

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Code = grpc.StatusCode
Ctl = pb.ControllerServiceCapability.RPC.Type
NodeCap = pb.NodeServiceCapability.RPC.Type
Svc = pb.PluginCapability.Service.Type


@dataclasses.dataclass(frozen=True)
class Advertised:
    plugin: frozenset[int]
    expansion: bool
    controller: frozenset[int]
    node: frozenset[int]


def _advertised(stubs: csi.Stubs) -> Advertised:
    plugin = stubs.identity.GetPluginCapabilities(pb.GetPluginCapabilitiesRequest()).capabilities
    ctl = stubs.controller.ControllerGetCapabilities(pb.ControllerGetCapabilitiesRequest())
    node = stubs.node.NodeGetCapabilities(pb.NodeGetCapabilitiesRequest())
    return Advertised(
        plugin=frozenset(c.service.type for c in plugin if c.HasField("service")),
        expansion=any(c.HasField("volume_expansion") for c in plugin),
        controller=frozenset(c.rpc.type for c in ctl.capabilities),
        node=frozenset(c.rpc.type for c in node.capabilities),
    )


def _from(kind: str, object_id: str) -> pb.VolumeContentSource:
    if kind == "snapshot":
        return pb.VolumeContentSource(
            snapshot=pb.VolumeContentSource.SnapshotSource(snapshot_id=object_id)
        )
    return pb.VolumeContentSource(volume=pb.VolumeContentSource.VolumeSource(volume_id=object_id))


@dataclasses.dataclass(frozen=True)
class Switch:
    gone: Callable[[Advertised], bool]  # the feature is no longer advertised
    call: Callable[[csi.Stubs, str, pathlib.Path], object]  # exercises the feature
    off_code: grpc.StatusCode  # the answer with --without


def _create_snapshot(s: csi.Stubs, vol: str, _: pathlib.Path) -> object:
    return csi.create_snapshot(s, "feature-snap", vol)


def _restore(s: csi.Stubs, vol: str, _: pathlib.Path) -> object:
    snap = pb.Snapshot(snapshot_id="snap-" + "0" * 32)
    return csi.create_volume(
        s, "restored", size=8 * csi.MiB, source=_from("snapshot", snap.snapshot_id)
    )


def _clone(s: csi.Stubs, vol: str, _: pathlib.Path) -> object:
    return csi.create_volume(s, "cloned", size=8 * csi.MiB, source=_from("volume", vol))


def _expand(s: csi.Stubs, vol: str, _: pathlib.Path) -> object:
    request = pb.ControllerExpandVolumeRequest(
        volume_id=vol, capacity_range=pb.CapacityRange(required_bytes=16 * csi.MiB)
    )
    return s.controller.ControllerExpandVolume(request)


def _block(s: csi.Stubs, vol: str, _: pathlib.Path) -> object:
    return csi.create_volume(s, "block", size=8 * csi.MiB, cap=csi.block_cap())


def _rwx(s: csi.Stubs, vol: str, _: pathlib.Path) -> object:
    cap = csi.mount_cap(mode=csi.Mode.MULTI_NODE_MULTI_WRITER)
    return csi.create_volume(s, "rwx", size=8 * csi.MiB, cap=cap)


def _stage(s: csi.Stubs, vol: str, where: pathlib.Path) -> object:
    request = pb.NodeStageVolumeRequest(
        volume_id=vol, staging_target_path=str(where), volume_capability=csi.mount_cap()
    )
    return s.node.NodeStageVolume(request)


def _group(s: csi.Stubs, vol: str, _: pathlib.Path) -> object:
    request = pb.CreateVolumeGroupSnapshotRequest(name="g", source_volume_ids=[vol])
    return s.group.CreateVolumeGroupSnapshot(request)


SWITCHES: dict[str, Switch] = {
    "snapshot": Switch(
        lambda a: (
            Ctl.CREATE_DELETE_SNAPSHOT not in a.controller
            and Svc.SNAPSHOT_METADATA_SERVICE not in a.plugin
        ),
        _create_snapshot,
        Code.UNIMPLEMENTED,
    ),
    "clone": Switch(lambda a: Ctl.CLONE_VOLUME not in a.controller, _clone, Code.INVALID_ARGUMENT),
    "expansion": Switch(
        lambda a: (
            Ctl.EXPAND_VOLUME not in a.controller
            and NodeCap.EXPAND_VOLUME not in a.node
            and not a.expansion
        ),
        _expand,
        Code.UNIMPLEMENTED,
    ),
    "block": Switch(lambda a: True, _block, Code.INVALID_ARGUMENT),
    "multi-node": Switch(lambda a: True, _rwx, Code.INVALID_ARGUMENT),
    "stage-unstage": Switch(
        lambda a: NodeCap.STAGE_UNSTAGE_VOLUME not in a.node, _stage, Code.UNIMPLEMENTED
    ),
    "group-snapshot": Switch(
        lambda a: Svc.GROUP_CONTROLLER_SERVICE not in a.plugin, _group, Code.UNIMPLEMENTED
    ),
}


@pytest.fixture
def start(tmp_path: pathlib.Path) -> Iterator[Callable[..., csi.Stubs]]:
    started: list[tuple[driverproc.DriverProcess, csi.Stubs]] = []

    def run(**options: object) -> csi.Stubs:
        where = tmp_path / f"driver-{len(started)}"
        drv = driverproc.start_driver(where, **options)  # type: ignore[arg-type]
        started.append((drv, csi.connect(drv.endpoint)))
        return started[-1][1]

    yield run
    for drv, stubs in started:
        stubs.close()
        drv.stop()


@pytest.mark.parametrize("feature", list(SWITCHES), ids=[f"without-{f}" for f in SWITCHES])
def test_switched_off_feature_disappears(
    start: Callable[..., csi.Stubs], tmp_path: pathlib.Path, feature: str
) -> None:
    stubs = start(without=(feature,))
    switch = SWITCHES[feature]
    assert switch.gone(_advertised(stubs))
    vol = csi.create_volume(stubs, "base", size=8 * csi.MiB).volume_id
    (tmp_path / "staging").mkdir()
    code, message = csi.code_of(lambda: switch.call(stubs, vol, tmp_path / "staging"))
    assert code == switch.off_code, message
    assert feature in message


@pytest.mark.parametrize("feature", list(SWITCHES), ids=[f"broken-{f}" for f in SWITCHES])
def test_advertised_broken_feature_fails(
    start: Callable[..., csi.Stubs], tmp_path: pathlib.Path, feature: str
) -> None:
    full = _advertised(start())
    stubs = start(advertise_broken=(feature,))
    assert _advertised(stubs) == full  # still advertised as if working
    vol = csi.create_volume(stubs, "base", size=8 * csi.MiB).volume_id
    (tmp_path / "staging").mkdir()
    call = SWITCHES[feature].call
    if feature == "block":  # CreateVolume accepts block; using it on the node fails

        def call(s: csi.Stubs, v: str, where: pathlib.Path) -> object:
            request = pb.NodeStageVolumeRequest(
                volume_id=v, staging_target_path=str(where), volume_capability=csi.block_cap()
            )
            return s.node.NodeStageVolume(request)

    code, message = csi.code_of(lambda: call(stubs, vol, tmp_path / "staging"))
    assert code == Code.INTERNAL, message
    assert "deliberately broken" in message


def test_restore_refused_without_snapshots(start: Callable[..., csi.Stubs]) -> None:
    stubs = start(without=("snapshot",))
    code, message = csi.code_of(lambda: _restore(stubs, "", pathlib.Path()))
    assert code == Code.INVALID_ARGUMENT
    assert "volume_content_source" in message


def test_without_block_validate_does_not_confirm(start: Callable[..., csi.Stubs]) -> None:
    stubs = start(without=("block",))
    vol = csi.create_volume(stubs, "v", size=8 * csi.MiB).volume_id
    answer = stubs.controller.ValidateVolumeCapabilities(
        pb.ValidateVolumeCapabilitiesRequest(volume_id=vol, volume_capabilities=[csi.block_cap()])
    )
    assert not answer.HasField("confirmed")
    assert "block" in answer.message


@pytest.mark.parametrize("block", [False, True], ids=["mount", "block"])
def test_without_staging_publish_does_everything(
    start: Callable[..., csi.Stubs], paths: pathlib.Path, block: bool
) -> None:
    stubs = start(without=("stage-unstage",))
    cap = csi.block_cap() if block else csi.mount_cap()
    vol = csi.create_volume(stubs, "direct", size=16 * csi.MiB, cap=cap).volume_id
    target = paths / "target"
    stubs.node.NodePublishVolume(
        pb.NodePublishVolumeRequest(volume_id=vol, target_path=str(target), volume_capability=cap)
    )
    if block:
        assert target.is_file() or target.is_block_device()
    else:
        (target / "f").write_text("direct")
    stats = stubs.node.NodeGetVolumeStats(
        pb.NodeGetVolumeStatsRequest(volume_id=vol, volume_path=str(target))
    )
    assert stats.usage[0].total > 0
    stubs.node.NodeUnpublishVolume(
        pb.NodeUnpublishVolumeRequest(volume_id=vol, target_path=str(target))
    )
    assert not target.exists()
    stubs.controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=vol))
