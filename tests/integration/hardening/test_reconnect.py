"""After a driver outage longer than the retry budget, the next call reaches the restarted driver.

gRPC's default reconnect backoff grows to seconds while a driver is down; a
client that kept it failed fast for that long after the driver was back.
"""

from __future__ import annotations

import pathlib
import time

import pytest

from csi_vm import errors
from csi_vm.csi import client as csi_client
from tests.support import driverproc, reliability

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_client_reconnects_within_the_retry_budget(tmp_path: pathlib.Path) -> None:
    drv = driverproc.start_driver(tmp_path)
    try:
        with csi_client.Client(drv.endpoint, timeout=2) as client:
            assert client.probe()
            drv.kill()
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:  # keep failing: the channel backs off
                with pytest.raises(errors.Unreachable):
                    client.probe()
            drv.restart()
            assert client.probe()
            reliability.record("driver-down-10s-then-back", reliability.COMPLETED)
    finally:
        drv.stop()
