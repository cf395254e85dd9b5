"""The config's nodes: libvirt URIs, the default for this node, unknown names refused."""

from __future__ import annotations

import pytest

from csi_vm import config, errors, fields

pytestmark = pytest.mark.timeout(10)


def test_this_node_defaults_to_the_system_libvirt() -> None:
    cfg = config.parse({"node": "node-a"})
    assert cfg.node_config("node-a") == config.NodeConfig(libvirt="qemu:///system", driver="")


def test_listed_nodes_keep_their_uri_and_driver() -> None:
    cfg = config.parse(
        {"node": "node-a", "nodes": {"node-b": {"libvirt": "qemu+ssh://b/system", "driver": "x"}}}
    )
    assert cfg.node_config("node-b").libvirt == "qemu+ssh://b/system"
    assert cfg.node_config("node-b").driver == "x"


def test_an_unknown_node_is_a_user_error() -> None:
    cfg = config.parse({"node": "node-a"})
    with pytest.raises(errors.InvalidInput, match="known: node-a"):
        cfg.node_config("node-c")


@pytest.mark.parametrize(
    "nodes",
    [{"Node_B": {}}, {"node-b": {"libvirt": ""}}, {"node-b": {"uri": "qemu:///system"}}],
    ids=["bad-name", "empty-uri", "unknown-key"],
)
def test_bad_node_entries_are_refused(nodes: dict[str, object]) -> None:
    with pytest.raises(fields.Invalid):
        config.parse({"nodes": nodes})
