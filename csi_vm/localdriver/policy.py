"""How switched-off and deliberately broken features answer, in one place.

A feature switched off with --without behaves as in a driver that never had
it: its RPCs raise Unsupported (UNIMPLEMENTED), and a request that needs it
inside another RPC (a block capability, a multi-node access mode, a content
source) is rejected as InvalidInput (INVALID_ARGUMENT), as CSI prescribes for
"source not supported" and unsupported capabilities.
"""

from __future__ import annotations

from csi_vm import errors
from csi_vm.localdriver import faults, limits, model
from csi_vm.localdriver.config import DriverConfig, Feature


def require(config: DriverConfig, feature: Feature, *, rpc: str) -> None:
    """Gate an RPC that exists only with the feature."""
    if not config.offers(feature):
        raise errors.Unsupported(f"{rpc} is not offered: this driver runs without {feature}")


def fail_if_broken(config: DriverConfig, feature: Feature, *, rpc: str) -> None:
    """--advertise-broken: the feature's main RPC fails as a driver bug would (INTERNAL)."""
    if config.is_broken(feature):
        raise faults.BrokenOnPurpose(
            f"{rpc} failed: {feature} is advertised but deliberately broken "
            "(--advertise-broken, a test switch)"
        )


def capability_problem(cap: model.Capability, config: DriverConfig) -> str | None:
    """Why this driver cannot serve the capability, or None if it can."""
    if cap.block and not config.offers(Feature.BLOCK):
        return "block access is not offered (driver runs without block)"
    if cap.mode.multi_node and not config.offers(Feature.MULTI_NODE):
        return f"access mode {cap.mode.name} is not offered (driver runs without multi-node)"
    if not cap.block and cap.fs_type and cap.fs_type not in limits.SUPPORTED_FS_TYPES:
        supported = ", ".join(limits.SUPPORTED_FS_TYPES)
        return f"fs_type {cap.fs_type!r} is not supported (supported: {supported})"
    return None


def check_capability(cap: model.Capability, config: DriverConfig, *, field: str) -> None:
    if problem := capability_problem(cap, config):
        raise errors.InvalidInput(f"{field}: {problem}")


def check_capabilities(
    caps: tuple[model.Capability, ...], config: DriverConfig, *, field: str
) -> None:
    if not caps:
        raise errors.InvalidInput(f"{field} is required and must not be empty")
    for index, cap in enumerate(caps):
        check_capability(cap, config, field=f"{field}[{index}]")


def minimum_size(caps: tuple[model.Capability, ...]) -> int:
    """The smallest volume every requested capability can use (xfs needs 300 MiB)."""
    if any(not c.block and c.fs_type == "xfs" for c in caps):
        return limits.MINIMUM_XFS_BYTES
    return limits.MINIMUM_VOLUME_BYTES
