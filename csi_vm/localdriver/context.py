"""The driver's shared parts, built once at start and handed to every service."""

from __future__ import annotations

import dataclasses
import logging

from csi_vm.localdriver import attachstate, catalog, db, hostops, images, locks, testhooks
from csi_vm.localdriver.config import DriverConfig

log = logging.getLogger(__name__)

#: CSI topology key carried by every node-local volume and returned by NodeGetInfo.
TOPOLOGY_KEY = "csi-vm.local/node"
STATE_FILE = "state.db"


def node_of(segment: dict[str, str]) -> str | None:
    """The node a topology segment names, if it is one of this driver's (only our key)."""
    return segment.get(TOPOLOGY_KEY) if set(segment) == {TOPOLOGY_KEY} else None


@dataclasses.dataclass(frozen=True)
class Context:
    config: DriverConfig
    db: db.Database
    images: images.ImageStore
    host: hostops.Host
    locks: locks.KeyedLocks
    hooks: testhooks.PauseHooks

    @property
    def has_topology(self) -> bool:
        """False for shared (network-like) storage, whose volumes every node reaches."""
        return self.config.pinned or not self.config.shared

    def segment(self) -> dict[str, str] | None:
        """This node's topology segment; None with --shared (no topology at all)."""
        return {TOPOLOGY_KEY: self.config.node_id} if self.has_topology else None


def open_context(config: DriverConfig, *, host: hostops.Host | None = None) -> Context:
    """Open (or create) the state dir, claim it, and clean up after any crash."""
    config.state_dir.mkdir(parents=True, exist_ok=True)
    database = db.Database(config.state_dir / STATE_FILE)
    try:
        with database.transaction() as cur:
            owner = _owner(config)
            attachstate.claim_state_dir(cur, mode=owner)
            attachstate.register_node(cur, config.node_id)
        store = images.ImageStore(config.state_dir, shared=config.shared)
        hooks = testhooks.PauseHooks.from_environment(config.state_dir)
        hooks.clear_markers()
        ctx = Context(
            config=config,
            db=database,
            images=store,
            host=host or hostops.Host(),
            locks=locks.KeyedLocks(),
            hooks=hooks,
        )
        _sweep(ctx)
    except BaseException:
        database.close()
        raise
    return ctx


def _owner(config: DriverConfig) -> str:
    """What the state dir is for: instances of another kind must not share it."""
    if config.shared:
        return "shared-pinned" if config.pinned else "shared"
    return f"node:{config.node_id}"


def _sweep(ctx: Context) -> None:
    """Remove what a crash left behind: temp images and images without a row."""

    def is_known(object_id: str) -> bool:
        with ctx.db.read() as cur:
            if object_id.startswith("vol-"):
                return catalog.get_volume(cur, object_id) is not None
            return catalog.get_snapshot(cur, object_id) is not None

    removed = ctx.images.sweep(is_known=is_known)
    if removed:
        log.info("startup sweep removed %d leftover image(s)", len(removed))
