"""Fixtures: a local driver process per test and stubs to call it."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.support import driverproc

from .csi import Stubs, connect, stubs_for  # noqa: F401  (stubs_for is a fixture)


@pytest.fixture
def driver(tmp_path: pathlib.Path) -> Iterator[driverproc.DriverProcess]:
    drv = driverproc.start_driver(tmp_path / "driver")
    yield drv
    drv.stop()


@pytest.fixture
def stubs(driver: driverproc.DriverProcess) -> Iterator[Stubs]:
    opened = connect(driver.endpoint)
    yield opened
    opened.close()


@pytest.fixture
def paths(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory for staging and target paths (outside the driver's state dir)."""
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    return node_dir
