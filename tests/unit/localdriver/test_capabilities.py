"""Advertised capabilities follow the feature switches."""

from __future__ import annotations

import pathlib

import pytest

from csi_vm.localdriver import capabilities
from csi_vm.localdriver.config import DriverConfig, Endpoint, Feature


def _config(*, without: set[Feature] = set(), shared: bool = False) -> DriverConfig:  # noqa: B006
    return DriverConfig(
        endpoint=Endpoint("127.0.0.1:1", None),
        state_dir=pathlib.Path("/state"),
        node_id="n",
        shared=shared,
        without=frozenset(without),
    )


def test_full_driver_advertises_everything() -> None:
    cfg = _config()
    assert capabilities.plugin_services(cfg) == [
        "CONTROLLER_SERVICE",
        "VOLUME_ACCESSIBILITY_CONSTRAINTS",
        "GROUP_CONTROLLER_SERVICE",
        "SNAPSHOT_METADATA_SERVICE",
    ]
    assert capabilities.volume_expansion(cfg) == "ONLINE"
    assert {"CREATE_DELETE_SNAPSHOT", "CLONE_VOLUME", "EXPAND_VOLUME"} <= set(
        capabilities.controller_rpcs(cfg)
    )
    assert capabilities.node_rpcs(cfg)[0] == "STAGE_UNSTAGE_VOLUME"


@pytest.mark.parametrize(
    ("feature", "gone"),
    [
        (
            Feature.SNAPSHOT,
            {
                "CREATE_DELETE_SNAPSHOT",
                "LIST_SNAPSHOTS",
                "GET_SNAPSHOT",
                "SNAPSHOT_METADATA_SERVICE",
            },
        ),
        (Feature.CLONE, {"CLONE_VOLUME"}),
        (Feature.EXPANSION, {"EXPAND_VOLUME", "ONLINE"}),
        (Feature.STAGE_UNSTAGE, {"STAGE_UNSTAGE_VOLUME"}),
        (
            Feature.GROUP_SNAPSHOT,
            {"GROUP_CONTROLLER_SERVICE", "CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT"},
        ),
        (Feature.BLOCK, set()),
        (Feature.MULTI_NODE, set()),
    ],
    ids=lambda v: str(v) if isinstance(v, Feature) else "",
)
def test_each_switch_removes_only_its_own(feature: Feature, gone: set[str]) -> None:
    def everything(cfg: DriverConfig) -> set[str]:
        return {
            *capabilities.plugin_services(cfg),
            *capabilities.controller_rpcs(cfg),
            *capabilities.node_rpcs(cfg),
            *capabilities.group_rpcs(cfg),
            capabilities.volume_expansion(cfg) or "",
        } - {""}

    assert everything(_config()) - everything(_config(without={feature})) == gone


def test_shared_storage_has_no_topology() -> None:
    assert "VOLUME_ACCESSIBILITY_CONSTRAINTS" not in capabilities.plugin_services(
        _config(shared=True)
    )
