"""The fake Kubernetes API server with csi-vm's CRDs, Leases and Jobs registered.

No real API server can run here (see the lab notes): these are fakes, and the
tests that use them are marked ``fake`` and named ``test_fake_api_*``.
"""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Iterator

import pytest

from csi_vm.controller import context, metrics
from csi_vm.crd import events, kinds
from csi_vm.csi import retry
from csi_vm.kube import api as kube_api
from csi_vm.kube import objects
from tests.support import fakekube
from tests.support.fakekube_store import Resource

QUICK = retry.RetryPolicy(attempts=2, first_delay=0.01, max_delay=0.02)
NOW = datetime.datetime(2026, 11, 28, 10, 0, tzinfo=datetime.UTC)
NS = "vms"

EXTRA = (
    Resource("coordination.k8s.io", "v1", "leases", "Lease", namespaced=True),
    Resource("batch", "v1", "jobs", "Job", namespaced=True),
    *(
        Resource(kinds.GROUP, kinds.VERSION, res.plural, kind, namespaced=res.namespaced)
        for res, kind in kinds.KIND.items()
    ),
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakekube.FakeKube]:
    # The fake writes headers and body separately; with Nagle's algorithm on,
    # each answer waits out the client's delayed ACK (~40 ms). Off, these
    # tests run in a fraction of the time.
    monkeypatch.setattr(fakekube._Handler, "disable_nagle_algorithm", True)
    with fakekube.running() as server:
        for res in EXTRA:
            server.store.register(res)
        yield server


@pytest.fixture
def ctx(fake: fakekube.FakeKube, tmp_path: pathlib.Path) -> Iterator[context.Context]:
    api = kube_api.connect(kubeconfig_file=fake.kubeconfig(tmp_path / "kubeconfig"), policy=QUICK)
    objs = objects.Objects(api)
    yield context.Context(
        api=api,
        objs=objs,
        events=events.Recorder(objs, clock=lambda: NOW),
        metrics=metrics.Metrics(),
        image="csi-vm:test",
        clock=lambda: NOW,
    )
    api.close()
