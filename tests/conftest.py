"""Root conftest of the test tree.

pytest reads command-line options only from plugins and from conftest files it
loads at start-up, so options used deeper in the tree are registered here.
Fixtures belong in the conftest of the folder that uses them.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    # Conformance suite (tests/conformance): which CSI driver to judge.
    group = parser.getgroup("csi-conformance", "CSI conformance suite")
    group.addoption(
        "--csi-endpoint",
        default=None,
        help="controller endpoint to test (unix:///path, a socket path, or tcp://host:port); "
        "without it the suite starts the local reference driver in each configuration",
    )
    group.addoption(
        "--csi-node-endpoint",
        default=None,
        help="node endpoint to test; defaults to --csi-endpoint",
    )
    group.addoption(
        "--csi-staging-dir",
        default=None,
        help="directory on the node where the suite creates staging and target paths "
        "(default: a temporary directory)",
    )
    group.addoption(
        "--csi-mutable-parameters",
        default=None,
        help="KEY=VALUE[,KEY=VALUE...] the driver accepts in ControllerModifyVolume, "
        "to test a successful modification",
    )
    group.addoption(
        "--csi-local-config",
        default=None,
        help="run the local reference driver only in this configuration "
        "(full, without-snapshot, ...)",
    )
