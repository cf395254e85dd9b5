"""csi-sanity, the kubernetes-csi conformance suite, at its pinned release."""

from __future__ import annotations

import pathlib

import pytest

from tests.support.cluster import gobuild, pins


@pytest.fixture(scope="session")
def csi_sanity() -> pathlib.Path:
    """The binary: scripts/check builds it first; a lone test run builds it here."""
    try:
        where = gobuild.ensure(pins.CSI_SANITY)
    except gobuild.BuildFailed as e:
        pytest.fail(str(e))
    return where / pins.CSI_SANITY.packages[0][1]
