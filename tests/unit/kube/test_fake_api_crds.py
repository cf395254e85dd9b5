"""The fake API server with the chart's CRDs: what the contract test cannot show on a cluster.

tests/integration/cluster/test_api_contract.py holds the fake to a real
server's answers; these pin down the parts a cluster does not exercise
there: the warnings of a pruning write, list-map keys, ratcheting.
"""

from __future__ import annotations

import json
import pathlib
import urllib.request
from collections.abc import Iterator

import pytest

from csi_vm import errors
from csi_vm.kube import api as kube_api
from csi_vm.kube import objects
from tests.support import fakekube, fakekube_schema

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

CRDS = pathlib.Path(__file__).resolve().parents[3] / "charts" / "csi-vm" / "crds"
VM = objects.Resource(group="csi-vm.io", version="v1alpha1", plural="csivms")
NS = "vms"


@pytest.fixture
def crds(fake: fakekube.FakeKube) -> list[fakekube.Resource]:
    return fake.install_crds(CRDS)


@pytest.fixture
def objs(crds: list[fakekube.Resource], api: kube_api.Api) -> Iterator[objects.Objects]:
    yield objects.Objects(api)


def _vm(name: str) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "csi-vm.io/v1alpha1",
        "kind": "CsiVM",
        "metadata": {"name": name},
        "spec": {"disks": [{"name": "root", "size": "1Gi", "storageClassName": "fast"}]},
    }


def test_fake_api_installs_every_chart_crd_with_its_status(crds: list[fakekube.Resource]) -> None:
    assert {r.kind for r in crds} == {
        "CsiVM",
        "CsiVMSnapshot",
        "CsiVMRestore",
        "CsiVMClone",
        "CsiVMMigration",
        "StorageCapabilityReport",
    }
    assert all(r.status_subresource and r.schema is not None for r in crds)


def test_fake_api_warns_of_the_fields_it_dropped(
    crds: list[fakekube.Resource], fake: fakekube.FakeKube
) -> None:
    body = _vm("a")
    body["spec"]["colour"] = "red"
    url = f"{fake.url}/apis/csi-vm.io/v1alpha1/namespaces/{NS}/csivms"
    headers = {"Authorization": f"Bearer {fake.token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 201
        assert answer.headers.get_all("Warning") == ['299 - "unknown field \\"spec.colour\\""']
        assert "colour" not in json.loads(answer.read())["spec"]


def test_fake_api_list_map_keys_are_unique(objs: objects.Objects) -> None:
    objs.create(VM, _vm("a"), namespace=NS)
    twice = [{"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}]
    with pytest.raises(errors.InvalidInput, match=r"status.conditions\[1\]: Duplicate value"):
        objs.patch(VM, "a", {"status": {"conditions": twice}}, namespace=NS, subresource="status")


def test_fake_api_seeds_keep_their_status(
    crds: list[fakekube.Resource], fake: fakekube.FakeKube, objs: objects.Objects
) -> None:
    """`FakeKube.add` writes a seed's status through /status, as a controller would."""
    fake.add({**_vm("a"), "metadata": {"name": "a", "namespace": NS}, "status": {"phase": "X"}})
    assert objs.get(VM, "a", namespace=NS)["status"] == {"phase": "X"}


def test_unchanged_values_are_not_checked_again() -> None:
    """Ratcheting: a value the write did not change passes, as on the real server."""
    schema = fakekube_schema.Schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {"cpus": {"type": "integer", "minimum": 1}},
                },
            },
        }
    )
    old = {"spec": {"cpus": 0}}
    assert [str(c) for c in schema.validate(old)] == [
        "spec.cpus: Invalid value: 0: spec.cpus in body should be greater than or equal to 1"
    ]
    assert schema.validate({"spec": {"cpus": 0}, "status": {}}, old=old) == []
    assert [c.field for c in schema.validate({"spec": {"cpus": -1}}, old=old)] == ["spec.cpus"]
