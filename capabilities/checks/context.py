"""What the checks share: the session, what was declared, and what they found."""

from __future__ import annotations

import dataclasses
import time

from capabilities import declared as declared_mod
from capabilities import model, results, session
from csi_vm import errors
from csi_vm.csi import models

M = models.VolumeMode
A = models.AccessMode


@dataclasses.dataclass(kw_only=True)
class Published:
    """A volume with known data, published on the first node."""

    volume: models.Volume
    capability: models.VolumeCapability
    staging: str
    target: str
    token: str


@dataclasses.dataclass(kw_only=True)
class Context:
    session: session.Session
    declared: declared_mod.Declared
    results: results.Results
    size: int
    nodes: tuple[str, ...]
    node_reason: str  # why node checks cannot run, "" when they can
    ready_timeout: float = 10.0
    modify_parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    accepted: dict[tuple[M, A], bool] = dataclasses.field(default_factory=dict)
    topology: tuple[models.Topology, ...] = ()
    multi_topology: tuple[models.Topology, ...] = ()
    published: dict[M, Published] = dataclasses.field(default_factory=dict)
    snapshot: models.Snapshot | None = None

    @property
    def first_node(self) -> str | None:
        return self.nodes[0] if self.nodes and not self.node_reason else None

    def data_volume(self) -> Published | None:
        """The published volume later checks build on, block preferred."""
        return self.published.get(M.BLOCK) or self.published.get(M.FILESYSTEM)

    def declares(self, feature: model.Feature) -> bool:
        return bool(self.declared.features().get(feature))

    def attach(
        self, node: str, *, volume_id: str, capability: models.VolumeCapability
    ) -> tuple[str, str]:
        """Stage (when the node offers it) and publish; returns (staging, target)."""
        staging = ""
        if self.results.get(model.Feature.STAGE_UNSTAGE) is not False:
            staging = self.session.stage(node, volume_id=volume_id, capability=capability)
        target = self.session.publish(
            node, volume_id=volume_id, capability=capability, staging_path=staging
        )
        return staging, target

    def wait_snapshot_ready(self, snap: models.Snapshot) -> models.Snapshot:
        deadline = time.monotonic() + self.ready_timeout
        delay = 0.02
        while not snap.ready_to_use:
            if time.monotonic() > deadline:
                raise errors.OperationFailed(
                    f"snapshot {snap.snapshot_id} never became ready in {self.ready_timeout:.0f} s"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
            snap = self._fetch_snapshot(snap.snapshot_id)
        return snap

    def _fetch_snapshot(self, snapshot_id: str) -> models.Snapshot:
        client = self.session.controller
        if models.ControllerCapability.GET_SNAPSHOT in self.declared.controller:
            return client.get_snapshot(snapshot_id)
        for snap in client.list_snapshots(snapshot_id=snapshot_id):
            return snap
        raise errors.NotFound(f"snapshot {snapshot_id} vanished while waiting for it")


def capability(mode: M, access: A = A.SINGLE_NODE_WRITER) -> models.VolumeCapability:
    return session.cap(mode, access)
