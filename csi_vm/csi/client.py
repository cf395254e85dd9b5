"""The CSI client: every call to a driver goes through `Client._call`.

That one door sets the deadline, retries transient codes with backoff, maps
gRPC errors into the csi-vm tree and keeps secrets out of every message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import grpc

from csi_vm import errors
from csi_vm.csi import convert, endpoint, models, retry
from csi_vm.csi import errors as csi_errors
from csi_vm.csi.pb import csi_pb2 as pb
from csi_vm.csi.pb import csi_pb2_grpc as pb_grpc

log = logging.getLogger("csi_vm.csi")

#: default deadline of one CSI call, in seconds (volume creation on real arrays
#: can take tens of seconds; the Kubernetes sidecars default to 10-60 s)
DEFAULT_TIMEOUT = 30.0

#: gRPC channel options of every client. The authority header of a unix target
#: is its path, which some servers reject; every CSI driver accepts "localhost".
#: gRPC's reconnect backoff (1 s growing to 120 s) would keep a channel failing
#: fast long after a restarted driver is back, beyond our retry budget: cap it
#: at the retry policy's own pace.
CHANNEL_OPTIONS = [
    ("grpc.default_authority", "localhost"),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]

_MAX_PAGES = 10_000  # a driver that keeps returning tokens must not loop us forever


class Client:
    """A connection to one CSI endpoint (controller, node, or both)."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        policy: retry.RetryPolicy | None = None,
        secrets: models.Secrets | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = target
        self.timeout = timeout
        self._target = endpoint.to_target(target)
        self._policy = policy or retry.RetryPolicy()
        self._secrets = secrets or models.Secrets()
        self._sleep = sleep
        self._channel = grpc.insecure_channel(self._target, options=CHANNEL_OPTIONS)
        self._stubs: dict[str, Any] = {
            "Identity": pb_grpc.IdentityStub(self._channel),
            "Controller": pb_grpc.ControllerStub(self._channel),
            "Node": pb_grpc.NodeStub(self._channel),
            "GroupController": pb_grpc.GroupControllerStub(self._channel),
            "SnapshotMetadata": pb_grpc.SnapshotMetadataStub(self._channel),
        }

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.endpoint!r}, timeout={self.timeout})"

    # -- the one door ---------------------------------------------------------

    def _call(
        self,
        service: str,
        method: str,
        request: Any,
        *,
        policy: retry.RetryPolicy | None = None,
    ) -> Any:
        rpc = getattr(self._stubs[service], method)
        what = f"{method} on {self.endpoint}"

        def once() -> Any:
            try:
                return rpc(request, timeout=self.timeout)
            except grpc.RpcError as err:
                raise csi_errors.from_rpc_error(err, rpc=method, target=self.endpoint) from err

        started = time.monotonic()
        result = retry.call(once, what=what, policy=policy or self._policy, sleep=self._sleep)
        log.debug("%s took %.3f s", what, time.monotonic() - started)
        return result

    def _stream(self, service: str, method: str, request: Any) -> Iterator[Any]:
        rpc = getattr(self._stubs[service], method)
        try:
            yield from rpc(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise csi_errors.from_rpc_error(err, rpc=method, target=self.endpoint) from err

    def _secret_values(self) -> dict[str, str]:
        return self._secrets.reveal()

    # -- Identity -------------------------------------------------------------

    def plugin_info(self) -> models.PluginInfo:
        return convert.plugin_info(
            self._call("Identity", "GetPluginInfo", pb.GetPluginInfoRequest())
        )

    def plugin_capabilities(self) -> models.PluginCapabilities:
        resp = self._call("Identity", "GetPluginCapabilities", pb.GetPluginCapabilitiesRequest())
        return convert.plugin_capabilities(resp)

    def probe(self, *, policy: retry.RetryPolicy | None = None) -> bool:
        """True when the driver says it is ready (an unset answer means ready)."""
        resp = self._call("Identity", "Probe", pb.ProbeRequest(), policy=policy)
        return not resp.HasField("ready") or bool(resp.ready.value)

    def wait_ready(self, *, within: float) -> None:
        """Block until Probe answers ready, or raise `errors.Unreachable`."""
        deadline = time.monotonic() + within
        last: errors.CsiVmError | None = None
        while time.monotonic() < deadline:
            try:
                if self.probe(policy=retry.NO_RETRY):
                    return
            except errors.Transient as err:
                last = err
            self._sleep(0.05)
        raise errors.Unreachable(
            f"{self.endpoint} did not become ready within {within} s", hint=str(last or "")
        )

    # -- Controller -----------------------------------------------------------

    def controller_capabilities(self) -> frozenset[models.ControllerCapability]:
        resp = self._call(
            "Controller", "ControllerGetCapabilities", pb.ControllerGetCapabilitiesRequest()
        )
        names = convert.rpc_names(resp, pb.ControllerServiceCapability.RPC.Type)
        return frozenset(
            models.ControllerCapability(n)
            for n in names
            if n in models.ControllerCapability.__members__
        )

    def create_volume(
        self,
        name: str,
        *,
        size: int,
        capabilities: tuple[models.VolumeCapability, ...],
        parameters: Mapping[str, str] | None = None,
        source: models.ContentSource | None = None,
        topology: tuple[models.Topology, ...] = (),
    ) -> models.Volume:
        request = pb.CreateVolumeRequest(
            name=name,
            capacity_range=pb.CapacityRange(required_bytes=size),
            volume_capabilities=[convert.volume_capability(c) for c in capabilities],
            parameters=dict(parameters or {}),
            secrets=self._secret_values(),
        )
        src = convert.content_source(source)
        if src is not None:
            request.volume_content_source.CopyFrom(src)
        req_topo = convert.topology_requirement(topology)
        if req_topo is not None:
            request.accessibility_requirements.CopyFrom(req_topo)
        return convert.volume(self._call("Controller", "CreateVolume", request).volume)

    def delete_volume(self, volume_id: str) -> None:
        request = pb.DeleteVolumeRequest(volume_id=volume_id, secrets=self._secret_values())
        self._call("Controller", "DeleteVolume", request)

    def controller_publish(
        self,
        volume_id: str,
        *,
        node_id: str,
        capability: models.VolumeCapability,
        readonly: bool = False,
    ) -> dict[str, str]:
        request = pb.ControllerPublishVolumeRequest(
            volume_id=volume_id,
            node_id=node_id,
            volume_capability=convert.volume_capability(capability),
            readonly=readonly,
            secrets=self._secret_values(),
        )
        return dict(self._call("Controller", "ControllerPublishVolume", request).publish_context)

    def controller_unpublish(self, volume_id: str, *, node_id: str) -> None:
        request = pb.ControllerUnpublishVolumeRequest(
            volume_id=volume_id, node_id=node_id, secrets=self._secret_values()
        )
        self._call("Controller", "ControllerUnpublishVolume", request)

    def validate_capabilities(
        self, volume_id: str, *, capabilities: tuple[models.VolumeCapability, ...]
    ) -> bool:
        """True when the driver confirms every given capability."""
        request = pb.ValidateVolumeCapabilitiesRequest(
            volume_id=volume_id,
            volume_capabilities=[convert.volume_capability(c) for c in capabilities],
            secrets=self._secret_values(),
        )
        resp = self._call("Controller", "ValidateVolumeCapabilities", request)
        return bool(resp.HasField("confirmed"))

    def list_volumes(self, *, page_size: int = 0) -> Iterator[models.VolumeEntry]:
        token = ""
        for _ in range(_MAX_PAGES):
            request = pb.ListVolumesRequest(max_entries=page_size, starting_token=token)
            resp = self._call("Controller", "ListVolumes", request)
            for entry in resp.entries:
                status = entry.status if entry.HasField("status") else None
                yield convert.volume_entry(entry.volume, status)
            token = resp.next_token
            if not token:
                return

    def get_volume(self, volume_id: str) -> models.VolumeEntry:
        request = pb.ControllerGetVolumeRequest(volume_id=volume_id)
        resp = self._call("Controller", "ControllerGetVolume", request)
        status = resp.status if resp.HasField("status") else None
        return convert.volume_entry(resp.volume, status)

    def capacity(
        self, *, capabilities: tuple[models.VolumeCapability, ...] = ()
    ) -> tuple[int, int, int]:
        """(available, maximum volume size, minimum volume size); 0 means unknown."""
        request = pb.GetCapacityRequest(
            volume_capabilities=[convert.volume_capability(c) for c in capabilities]
        )
        resp = self._call("Controller", "GetCapacity", request)
        maximum = resp.maximum_volume_size.value if resp.HasField("maximum_volume_size") else 0
        minimum = resp.minimum_volume_size.value if resp.HasField("minimum_volume_size") else 0
        return resp.available_capacity, maximum, minimum

    def create_snapshot(
        self, source_volume_id: str, *, name: str, parameters: Mapping[str, str] | None = None
    ) -> models.Snapshot:
        request = pb.CreateSnapshotRequest(
            source_volume_id=source_volume_id,
            name=name,
            parameters=dict(parameters or {}),
            secrets=self._secret_values(),
        )
        return convert.snapshot(self._call("Controller", "CreateSnapshot", request).snapshot)

    def delete_snapshot(self, snapshot_id: str) -> None:
        request = pb.DeleteSnapshotRequest(snapshot_id=snapshot_id, secrets=self._secret_values())
        self._call("Controller", "DeleteSnapshot", request)

    def list_snapshots(
        self, *, snapshot_id: str = "", source_volume_id: str = "", page_size: int = 0
    ) -> Iterator[models.Snapshot]:
        token = ""
        for _ in range(_MAX_PAGES):
            request = pb.ListSnapshotsRequest(
                max_entries=page_size,
                starting_token=token,
                snapshot_id=snapshot_id,
                source_volume_id=source_volume_id,
                secrets=self._secret_values(),
            )
            resp = self._call("Controller", "ListSnapshots", request)
            for entry in resp.entries:
                yield convert.snapshot(entry.snapshot)
            token = resp.next_token
            if not token:
                return

    def get_snapshot(self, snapshot_id: str) -> models.Snapshot:
        """One snapshot by id (GetSnapshot, offered by drivers with GET_SNAPSHOT)."""
        request = pb.GetSnapshotRequest(snapshot_id=snapshot_id, secrets=self._secret_values())
        return convert.snapshot(self._call("Controller", "GetSnapshot", request).snapshot)

    def expand_volume(
        self, volume_id: str, *, size: int, capability: models.VolumeCapability | None = None
    ) -> models.ExpandResult:
        request = pb.ControllerExpandVolumeRequest(
            volume_id=volume_id,
            capacity_range=pb.CapacityRange(required_bytes=size),
            secrets=self._secret_values(),
        )
        if capability is not None:
            request.volume_capability.CopyFrom(convert.volume_capability(capability))
        resp = self._call("Controller", "ControllerExpandVolume", request)
        return models.ExpandResult(
            capacity_bytes=resp.capacity_bytes,
            node_expansion_required=resp.node_expansion_required,
        )

    def modify_volume(self, volume_id: str, *, mutable_parameters: Mapping[str, str]) -> None:
        request = pb.ControllerModifyVolumeRequest(
            volume_id=volume_id,
            mutable_parameters=dict(mutable_parameters),
            secrets=self._secret_values(),
        )
        self._call("Controller", "ControllerModifyVolume", request)

    # -- GroupController ------------------------------------------------------

    def group_capabilities(self) -> frozenset[str]:
        resp = self._call(
            "GroupController",
            "GroupControllerGetCapabilities",
            pb.GroupControllerGetCapabilitiesRequest(),
        )
        return convert.rpc_names(resp, pb.GroupControllerServiceCapability.RPC.Type)

    def create_group_snapshot(
        self, volume_ids: tuple[str, ...], *, name: str
    ) -> models.GroupSnapshot:
        request = pb.CreateVolumeGroupSnapshotRequest(
            name=name, source_volume_ids=list(volume_ids), secrets=self._secret_values()
        )
        resp = self._call("GroupController", "CreateVolumeGroupSnapshot", request)
        return convert.group_snapshot(resp.group_snapshot)

    def get_group_snapshot(
        self, group_snapshot_id: str, *, snapshot_ids: tuple[str, ...]
    ) -> models.GroupSnapshot:
        request = pb.GetVolumeGroupSnapshotRequest(
            group_snapshot_id=group_snapshot_id,
            snapshot_ids=list(snapshot_ids),
            secrets=self._secret_values(),
        )
        resp = self._call("GroupController", "GetVolumeGroupSnapshot", request)
        return convert.group_snapshot(resp.group_snapshot)

    def delete_group_snapshot(
        self, group_snapshot_id: str, *, snapshot_ids: tuple[str, ...]
    ) -> None:
        request = pb.DeleteVolumeGroupSnapshotRequest(
            group_snapshot_id=group_snapshot_id,
            snapshot_ids=list(snapshot_ids),
            secrets=self._secret_values(),
        )
        self._call("GroupController", "DeleteVolumeGroupSnapshot", request)

    # -- SnapshotMetadata -----------------------------------------------------

    def allocated_extents(self, snapshot_id: str) -> Iterator[models.MetadataChunk]:
        request = pb.GetMetadataAllocatedRequest(
            snapshot_id=snapshot_id, secrets=self._secret_values()
        )
        for resp in self._stream("SnapshotMetadata", "GetMetadataAllocated", request):
            yield convert.metadata_chunk(resp)

    def changed_extents(
        self, base_snapshot_id: str, target_snapshot_id: str
    ) -> Iterator[models.MetadataChunk]:
        request = pb.GetMetadataDeltaRequest(
            base_snapshot_id=base_snapshot_id,
            target_snapshot_id=target_snapshot_id,
            secrets=self._secret_values(),
        )
        for resp in self._stream("SnapshotMetadata", "GetMetadataDelta", request):
            yield convert.metadata_chunk(resp)

    # -- Node -----------------------------------------------------------------

    def node_capabilities(self) -> frozenset[models.NodeCapability]:
        resp = self._call("Node", "NodeGetCapabilities", pb.NodeGetCapabilitiesRequest())
        names = convert.rpc_names(resp, pb.NodeServiceCapability.RPC.Type)
        return frozenset(
            models.NodeCapability(n) for n in names if n in models.NodeCapability.__members__
        )

    def node_info(self) -> models.NodeInfo:
        return convert.node_info(self._call("Node", "NodeGetInfo", pb.NodeGetInfoRequest()))

    def node_stage(
        self,
        volume_id: str,
        *,
        staging_path: str,
        capability: models.VolumeCapability,
        publish_context: Mapping[str, str] | None = None,
        volume_context: Mapping[str, str] | None = None,
    ) -> None:
        request = pb.NodeStageVolumeRequest(
            volume_id=volume_id,
            publish_context=dict(publish_context or {}),
            staging_target_path=staging_path,
            volume_capability=convert.volume_capability(capability),
            secrets=self._secret_values(),
            volume_context=dict(volume_context or {}),
        )
        self._call("Node", "NodeStageVolume", request)

    def node_unstage(self, volume_id: str, *, staging_path: str) -> None:
        request = pb.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=staging_path)
        self._call("Node", "NodeUnstageVolume", request)

    def node_publish(
        self,
        volume_id: str,
        *,
        target_path: str,
        capability: models.VolumeCapability,
        staging_path: str = "",
        readonly: bool = False,
        publish_context: Mapping[str, str] | None = None,
        volume_context: Mapping[str, str] | None = None,
    ) -> None:
        request = pb.NodePublishVolumeRequest(
            volume_id=volume_id,
            publish_context=dict(publish_context or {}),
            staging_target_path=staging_path,
            target_path=target_path,
            volume_capability=convert.volume_capability(capability),
            readonly=readonly,
            secrets=self._secret_values(),
            volume_context=dict(volume_context or {}),
        )
        self._call("Node", "NodePublishVolume", request)

    def node_unpublish(self, volume_id: str, *, target_path: str) -> None:
        request = pb.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=target_path)
        self._call("Node", "NodeUnpublishVolume", request)

    def node_stats(
        self, volume_id: str, *, volume_path: str, staging_path: str = ""
    ) -> models.VolumeStats:
        request = pb.NodeGetVolumeStatsRequest(
            volume_id=volume_id, volume_path=volume_path, staging_target_path=staging_path
        )
        return convert.volume_stats(self._call("Node", "NodeGetVolumeStats", request))

    def node_expand(
        self,
        volume_id: str,
        *,
        volume_path: str,
        size: int,
        staging_path: str = "",
        capability: models.VolumeCapability | None = None,
    ) -> int:
        request = pb.NodeExpandVolumeRequest(
            volume_id=volume_id,
            volume_path=volume_path,
            capacity_range=pb.CapacityRange(required_bytes=size),
            staging_target_path=staging_path,
            secrets=self._secret_values(),
        )
        if capability is not None:
            request.volume_capability.CopyFrom(convert.volume_capability(capability))
        return int(self._call("Node", "NodeExpandVolume", request).capacity_bytes)
