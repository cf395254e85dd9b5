"""Raw gRPC stubs and request builders for the local driver's integration tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import grpc
import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.csi.pb import csi_pb2_grpc as pbg

GiB = 1 << 30
MiB = 1 << 20
TIMEOUT_S = 60.0

Mode = pb.VolumeCapability.AccessMode.Mode


@dataclasses.dataclass
class Stubs:
    channel: grpc.Channel
    identity: pbg.IdentityStub
    controller: pbg.ControllerStub
    node: pbg.NodeStub
    group: pbg.GroupControllerStub
    metadata: pbg.SnapshotMetadataStub

    def close(self) -> None:
        self.channel.close()


def connect(endpoint: str) -> Stubs:
    channel = grpc.insecure_channel(endpoint)
    return Stubs(
        channel=channel,
        identity=pbg.IdentityStub(channel),
        controller=pbg.ControllerStub(channel),
        node=pbg.NodeStub(channel),
        group=pbg.GroupControllerStub(channel),
        metadata=pbg.SnapshotMetadataStub(channel),
    )


@pytest.fixture
def stubs_for() -> Iterator[Callable[[str], Stubs]]:
    opened: list[Stubs] = []

    def make(endpoint: str) -> Stubs:
        opened.append(connect(endpoint))
        return opened[-1]

    yield make
    for stubs in opened:
        stubs.close()


def mount_cap(
    mode: int = Mode.SINGLE_NODE_WRITER, fs_type: str = "", flags: tuple[str, ...] = ()
) -> pb.VolumeCapability:
    return pb.VolumeCapability(
        mount=pb.VolumeCapability.MountVolume(fs_type=fs_type, mount_flags=list(flags)),
        access_mode=pb.VolumeCapability.AccessMode(mode=mode),  # type: ignore[arg-type]
    )


def block_cap(mode: int = Mode.SINGLE_NODE_WRITER) -> pb.VolumeCapability:
    return pb.VolumeCapability(
        block=pb.VolumeCapability.BlockVolume(),
        access_mode=pb.VolumeCapability.AccessMode(mode=mode),  # type: ignore[arg-type]
    )


def create_volume(
    stubs: Stubs,
    name: str,
    *,
    size: int = GiB,
    cap: pb.VolumeCapability | None = None,
    source: pb.VolumeContentSource | None = None,
) -> pb.Volume:
    request = pb.CreateVolumeRequest(
        name=name,
        capacity_range=pb.CapacityRange(required_bytes=size),
        volume_capabilities=[cap or mount_cap()],
    )
    if source is not None:
        request.volume_content_source.CopyFrom(source)
    return stubs.controller.CreateVolume(request, timeout=TIMEOUT_S).volume


def create_snapshot(stubs: Stubs, name: str, volume_id: str) -> pb.Snapshot:
    request = pb.CreateSnapshotRequest(name=name, source_volume_id=volume_id)
    return stubs.controller.CreateSnapshot(request, timeout=TIMEOUT_S).snapshot


def list_volume_ids(stubs: Stubs) -> set[str]:
    response = stubs.controller.ListVolumes(pb.ListVolumesRequest(), timeout=TIMEOUT_S)
    return {e.volume.volume_id for e in response.entries}


def list_snapshot_ids(stubs: Stubs) -> set[str]:
    response = stubs.controller.ListSnapshots(pb.ListSnapshotsRequest(), timeout=TIMEOUT_S)
    return {e.snapshot.snapshot_id for e in response.entries}


def stage_and_publish(
    stubs: Stubs,
    volume_id: str,
    *,
    staging: str,
    target: str,
    cap: pb.VolumeCapability,
    readonly: bool = False,
) -> None:
    stubs.node.NodeStageVolume(
        pb.NodeStageVolumeRequest(
            volume_id=volume_id, staging_target_path=staging, volume_capability=cap
        ),
        timeout=TIMEOUT_S,
    )
    stubs.node.NodePublishVolume(
        pb.NodePublishVolumeRequest(
            volume_id=volume_id,
            staging_target_path=staging,
            target_path=target,
            volume_capability=cap,
            readonly=readonly,
        ),
        timeout=TIMEOUT_S,
    )


def unpublish_and_unstage(stubs: Stubs, volume_id: str, *, staging: str, target: str) -> None:
    stubs.node.NodeUnpublishVolume(
        pb.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=target), timeout=TIMEOUT_S
    )
    stubs.node.NodeUnstageVolume(
        pb.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=staging),
        timeout=TIMEOUT_S,
    )


def code_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """Run a call that must fail; return its status code and message."""
    try:
        call()
    except grpc.RpcError as err:
        return err.code(), err.details() or ""  # type: ignore[attr-defined]
    raise AssertionError("the call succeeded but should have failed")
