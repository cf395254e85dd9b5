"""GetCapacity: sane numbers, honouring capabilities and topology."""

from __future__ import annotations

import pytest

from csi_vm.csi.pb import csi_pb2

from . import build, rpc
from .caps import Caps, Probe
from .target import Target, require

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Code = rpc.Code


@pytest.fixture(autouse=True)
def _needs_capacity(csi_target: Target, caps: Caps) -> None:
    require(
        csi_target,
        "capacity",
        caps.controller_has("GET_CAPACITY"),
        "controller lacks GET_CAPACITY (its refusal is checked in test_capability_rules)",
    )


def _check(answer: csi_pb2.GetCapacityResponse) -> None:
    assert answer.available_capacity >= 0
    low = answer.minimum_volume_size.value if answer.HasField("minimum_volume_size") else 0
    high = answer.maximum_volume_size.value if answer.HasField("maximum_volume_size") else None
    assert low >= 0
    if high is not None:
        assert high >= 0
        assert low <= high, f"minimum_volume_size {low} above maximum_volume_size {high}"


def test_capacity_of_the_whole_pool(csi: rpc.Csi) -> None:
    _check(csi.controller.GetCapacity(csi_pb2.GetCapacityRequest()))


@pytest.mark.parametrize("access", build.ACCESS_TYPES)
def test_capacity_for_an_access_type(
    csi: rpc.Csi, access_probes: dict[str, Probe], access: str
) -> None:
    request = csi_pb2.GetCapacityRequest(volume_capabilities=[build.capability(access)])
    if access == "mount" or access_probes["block"].accepted:
        _check(csi.controller.GetCapacity(request))
        return
    # Nothing can be provisioned for a capability the driver refuses.
    answer = rpc.outcome(lambda: csi.controller.GetCapacity(request))
    if answer.code == Code.OK:
        assert csi.controller.GetCapacity(request).available_capacity == 0, (
            "capacity reported for block access, which CreateVolume refuses"
        )
    else:
        assert answer.code == Code.INVALID_ARGUMENT, answer


def test_capacity_in_the_node_topology(csi: rpc.Csi, caps: Caps) -> None:
    if not (caps.topology and caps.node_topology):
        pytest.skip("the driver reports no node topology to ask about")
    answer = csi.controller.GetCapacity(
        csi_pb2.GetCapacityRequest(
            volume_capabilities=[build.capability()],
            accessible_topology=csi_pb2.Topology(segments=caps.node_topology),
        )
    )
    _check(answer)
    assert answer.available_capacity >= caps.volume_size, (
        "the node under test has no room for one test volume"
    )
