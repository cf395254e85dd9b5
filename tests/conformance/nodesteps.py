"""The node half of the ledger: taking volumes to PUBLISHED and back, as a CO does.

Each step registers its negation call *before* it runs: after a failed or
uncertain call a CO may issue the negation, and the SP must then clean up
whatever it half made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import grpc

from csi_vm.csi.pb import csi_pb2

from . import build, data, rpc
from .caps import Caps
from .undo import UndoLog


@dataclasses.dataclass
class Attachment:
    """A volume made usable on the node: controller-published, staged, published."""

    volume: csi_pb2.Volume
    capability: csi_pb2.VolumeCapability
    readonly: bool
    publish_context: dict[str, str]
    staging_path: str
    target_path: str

    @property
    def volume_id(self) -> str:
        return str(self.volume.volume_id)

    @property
    def access(self) -> str:
        return "block" if self.capability.HasField("block") else "mount"


class NodeSteps:
    """Mixed into the Ledger, which supplies the connection, the undo log and paths."""

    csi: rpc.Csi
    caps: Caps
    undo: UndoLog

    def staging_path(self) -> str:
        raise NotImplementedError

    def target_path(self) -> str:
        raise NotImplementedError

    def controller_publish(
        self, volume: csi_pb2.Volume, capability: csi_pb2.VolumeCapability, readonly: bool
    ) -> dict[str, str]:
        """ControllerPublishVolume to the node under test, when the controller offers it."""
        if not self.caps.controller_has("PUBLISH_UNPUBLISH_VOLUME"):
            return {}
        undo = csi_pb2.ControllerUnpublishVolumeRequest(
            volume_id=volume.volume_id, node_id=self.caps.node_id
        )
        self.undo.add(
            f"ControllerUnpublishVolume {volume.volume_id}",
            lambda: self.csi.controller.ControllerUnpublishVolume(undo),
            tolerate=(grpc.StatusCode.NOT_FOUND,),
        )
        answer = self.csi.controller.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest(
                volume_id=volume.volume_id,
                node_id=self.caps.node_id,
                volume_capability=capability,
                readonly=readonly and self.caps.controller_has("PUBLISH_READONLY"),
                volume_context=volume.volume_context,
            )
        )
        return dict(answer.publish_context)

    def stage(
        self,
        volume: csi_pb2.Volume,
        capability: csi_pb2.VolumeCapability,
        publish_context: dict[str, str],
        staging_path: str | None = None,
    ) -> str:
        """NodeStageVolume when the node offers it; returns the staging path or ""."""
        if not self.caps.stage:
            return ""
        path = staging_path or self.staging_path()
        self.will_unstage(str(volume.volume_id), path)
        self.csi.node.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id=volume.volume_id,
                publish_context=publish_context,
                staging_target_path=path,
                volume_capability=capability,
                volume_context=volume.volume_context,
            )
        )
        return path

    def will_unstage(self, volume_id: str, path: str) -> None:
        """Unstage at teardown; registered before staging, as a CO may unstage after a failure."""
        undo = csi_pb2.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=path)
        self.undo.add(
            f"NodeUnstageVolume {volume_id} {path}",
            lambda: self.csi.node.NodeUnstageVolume(undo),
            tolerate=(grpc.StatusCode.NOT_FOUND,),
        )

    def publish_request(
        self, attachment: Attachment, target_path: str | None = None
    ) -> csi_pb2.NodePublishVolumeRequest:
        return csi_pb2.NodePublishVolumeRequest(
            volume_id=attachment.volume_id,
            publish_context=attachment.publish_context,
            staging_target_path=attachment.staging_path,
            target_path=target_path or attachment.target_path,
            volume_capability=attachment.capability,
            readonly=attachment.readonly,
            volume_context=attachment.volume.volume_context,
        )

    def publish(self, attachment: Attachment, target_path: str | None = None) -> str:
        request = self.publish_request(attachment, target_path)
        self.will_unpublish(request.volume_id, request.target_path)
        self.csi.node.NodePublishVolume(request)
        return str(request.target_path)

    def will_unpublish(self, volume_id: str, path: str) -> None:
        """Unpublish at teardown; registered before publishing, as a CO may unpublish
        after a failed publish (and the SP must then remove what it created)."""
        undo = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=path)
        self.undo.add(
            f"NodeUnpublishVolume {volume_id} {path}",
            lambda: self.csi.node.NodeUnpublishVolume(undo),
            tolerate=(grpc.StatusCode.NOT_FOUND,),
        )

    def plan(
        self,
        volume: csi_pb2.Volume,
        *,
        access: str = "mount",
        mode: str = "SINGLE_NODE_WRITER",
        readonly: bool = False,
    ) -> Attachment:
        """Choose the capability and paths of an attachment; nothing is called yet."""
        return Attachment(
            volume=volume,
            capability=build.capability(access, mode),
            readonly=readonly,
            publish_context={},
            staging_path=self.staging_path() if self.caps.stage else "",
            target_path=self.target_path(),
        )

    def attach(
        self,
        volume: csi_pb2.Volume,
        *,
        access: str = "mount",
        mode: str = "SINGLE_NODE_WRITER",
        readonly: bool = False,
    ) -> Attachment:
        """Walk a volume to PUBLISHED the way a CO would, given the advertised capabilities."""
        attachment = self.plan(volume, access=access, mode=mode, readonly=readonly)
        self.reattach(attachment)
        return attachment

    def try_attach(
        self, volume: csi_pb2.Volume, *, access: str = "mount"
    ) -> tuple[rpc.Refusal, Attachment | None]:
        """Attach, or after a failure negate every step as a CO would; report how it went."""
        attachment = self.plan(volume, access=access)
        try:
            self.reattach(attachment)
        except grpc.RpcError as err:
            self.detach(attachment, tolerate=(grpc.StatusCode.NOT_FOUND,))
            return rpc.Refusal(err.code(), err.details() or ""), None
        return rpc.Refusal(grpc.StatusCode.OK), attachment

    def detach(self, attachment: Attachment, *, tolerate: tuple[grpc.StatusCode, ...] = ()) -> None:
        """Undo `attach` in CO order: unpublish, unstage, controller unpublish."""
        calls: list[Callable[[], object]] = [
            lambda: self.csi.node.NodeUnpublishVolume(
                csi_pb2.NodeUnpublishVolumeRequest(
                    volume_id=attachment.volume_id, target_path=attachment.target_path
                )
            )
        ]
        if attachment.staging_path:
            calls.append(
                lambda: self.csi.node.NodeUnstageVolume(
                    csi_pb2.NodeUnstageVolumeRequest(
                        volume_id=attachment.volume_id,
                        staging_target_path=attachment.staging_path,
                    )
                )
            )
        if self.caps.controller_has("PUBLISH_UNPUBLISH_VOLUME"):
            calls.append(
                lambda: self.csi.controller.ControllerUnpublishVolume(
                    csi_pb2.ControllerUnpublishVolumeRequest(
                        volume_id=attachment.volume_id, node_id=self.caps.node_id
                    )
                )
            )
        for call in calls:
            try:
                call()
            except grpc.RpcError as err:
                if err.code() not in tolerate:
                    raise

    def reattach(self, attachment: Attachment) -> None:
        """Take a planned or detached attachment to PUBLISHED at its paths."""
        context = self.controller_publish(
            attachment.volume, attachment.capability, attachment.readonly
        )
        attachment.publish_context = context
        if attachment.staging_path:
            self.stage(attachment.volume, attachment.capability, context, attachment.staging_path)
        self.publish(attachment)

    def put(self, volume: csi_pb2.Volume, access: str, payload: bytes) -> None:
        """Attach, write `payload` at the suite's spot, detach."""
        attachment = self.attach(volume, access=access)
        data.store(access, attachment.target_path, payload)
        self.detach(attachment)

    def get(self, volume: csi_pb2.Volume, access: str, size: int) -> bytes:
        """Attach read-write, read `size` bytes from the suite's spot, detach."""
        attachment = self.attach(volume, access=access)
        try:
            return data.load(access, attachment.target_path, size)
        finally:
            self.detach(attachment)
