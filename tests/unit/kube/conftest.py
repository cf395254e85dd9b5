"""A fake Kubernetes API server with a typical cluster's storage objects.

No real API server can run here (see the lab notes); these fixtures start the
local fake from `tests.support.fakekube` instead.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from csi_vm.csi import retry
from csi_vm.kube import api as kube_api
from tests.support import fakekube, kubeobjects

# Retries in tests: quick, and few enough that a failure shows at once.
QUICK = retry.RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02)


@pytest.fixture
def fake() -> Iterator[fakekube.FakeKube]:
    with fakekube.running() as server:
        server.add(*kubeobjects.typical_cluster())
        yield server


@pytest.fixture
def api(fake: fakekube.FakeKube, tmp_path: pathlib.Path) -> Iterator[kube_api.Api]:
    with kube_api.connect(
        kubeconfig_file=fake.kubeconfig(tmp_path / "kubeconfig"), policy=QUICK
    ) as client:
        yield client
