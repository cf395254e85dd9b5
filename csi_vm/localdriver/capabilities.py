"""What the driver advertises, as CSI enum names, from its feature switches.

A switched-off feature vanishes from these lists; a feature advertised
broken stays in them (that is the point of --advertise-broken). A feature
served but undeclared on purpose (--fault undeclared-*) is taken out last.
Volume expansion is advertised ONLINE only: in CSI, ONLINE already covers
offline expansion, and OFFLINE would forbid expanding published volumes.
"""

from __future__ import annotations

from csi_vm.localdriver import fault_switches
from csi_vm.localdriver.config import DriverConfig, Feature


def plugin_services(config: DriverConfig) -> list[str]:
    services = ["CONTROLLER_SERVICE"]
    if config.pinned or not config.shared:  # shared storage is reachable from every node
        services.append("VOLUME_ACCESSIBILITY_CONSTRAINTS")
    if config.offers(Feature.GROUP_SNAPSHOT):
        services.append("GROUP_CONTROLLER_SERVICE")
    if config.offers(Feature.SNAPSHOT):
        services.append("SNAPSHOT_METADATA_SERVICE")
    return fault_switches.declared(config, services)


def volume_expansion(config: DriverConfig) -> str | None:
    if config.offers(Feature.EXPANSION) and fault_switches.declared(config, ["ONLINE"]):
        return "ONLINE"
    return None


def controller_rpcs(config: DriverConfig) -> list[str]:
    rpcs = [
        "CREATE_DELETE_VOLUME",
        "PUBLISH_UNPUBLISH_VOLUME",
        "LIST_VOLUMES",
        "GET_CAPACITY",
        "PUBLISH_READONLY",
        "LIST_VOLUMES_PUBLISHED_NODES",
        "VOLUME_CONDITION",
        "GET_VOLUME",
        "SINGLE_NODE_MULTI_WRITER",
        "MODIFY_VOLUME",
    ]
    if config.offers(Feature.SNAPSHOT):
        rpcs += ["CREATE_DELETE_SNAPSHOT", "LIST_SNAPSHOTS", "GET_SNAPSHOT"]
    if config.offers(Feature.CLONE):
        rpcs.append("CLONE_VOLUME")
    if config.offers(Feature.EXPANSION):
        rpcs.append("EXPAND_VOLUME")
    return fault_switches.declared(config, rpcs)


def node_rpcs(config: DriverConfig) -> list[str]:
    rpcs = ["GET_VOLUME_STATS", "VOLUME_CONDITION", "SINGLE_NODE_MULTI_WRITER"]
    if config.offers(Feature.STAGE_UNSTAGE):
        rpcs.insert(0, "STAGE_UNSTAGE_VOLUME")
    if config.offers(Feature.EXPANSION):
        rpcs.append("EXPAND_VOLUME")
    return fault_switches.declared(config, rpcs)


def group_rpcs(config: DriverConfig) -> list[str]:
    if config.offers(Feature.GROUP_SNAPSHOT):
        return fault_switches.declared(config, ["CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT"])
    return []
