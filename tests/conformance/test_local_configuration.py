"""The local reference driver offers exactly the features of its configuration.

This is what makes the other tests' adaptation trustworthy: a feature that a
configuration must offer can never be skipped as "not advertised" unnoticed,
and a switched-off feature must vanish from every capability that shows it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .caps import Caps, Probe
from .target import LOCAL_FEATURES, Target

pytestmark = [pytest.mark.conformance, pytest.mark.integration, pytest.mark.timeout(60)]

Facets = dict[str, bool]

FACETS: dict[str, Callable[[Caps, dict[str, Probe]], Facets]] = {
    "snapshot": lambda c, p: {
        "controller CREATE_DELETE_SNAPSHOT": c.controller_has("CREATE_DELETE_SNAPSHOT"),
        "controller LIST_SNAPSHOTS": c.controller_has("LIST_SNAPSHOTS"),
    },
    "clone": lambda c, p: {"controller CLONE_VOLUME": c.controller_has("CLONE_VOLUME")},
    "expansion": lambda c, p: {
        "controller EXPAND_VOLUME": c.controller_has("EXPAND_VOLUME"),
        "node EXPAND_VOLUME": c.node_has("EXPAND_VOLUME"),
        "plugin VolumeExpansion": bool(c.expansion),
    },
    "block": lambda c, p: {"CreateVolume accepts block access": p["block"].accepted},
    "multi-node": lambda c, p: {
        "CreateVolume accepts MULTI_NODE_MULTI_WRITER": p["multi-node"].accepted
    },
    "stage-unstage": lambda c, p: {"node STAGE_UNSTAGE_VOLUME": c.stage},
    "group-snapshot": lambda c, p: {
        "plugin GROUP_CONTROLLER_SERVICE": c.service_has("GROUP_CONTROLLER_SERVICE"),
        "group CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT": c.group_has(
            "CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT"
        ),
    },
}

assert set(FACETS) == set(LOCAL_FEATURES)


@pytest.mark.parametrize("feature", LOCAL_FEATURES)
def test_local_driver_offers_exactly_its_configured_features(
    csi_target: Target, caps: Caps, access_probes: dict[str, Probe], feature: str
) -> None:
    if csi_target.expected is None:
        pytest.skip("an external driver's feature set is not known in advance")
    facets = FACETS[feature](caps, access_probes)
    if feature in csi_target.expected:
        missing = [name for name, present in facets.items() if not present]
        assert not missing, f"{csi_target.name} should offer {feature}; missing: {missing}"
    else:
        present = [name for name, on in facets.items() if on]
        assert not present, f"{csi_target.name} switched {feature} off, yet offers: {present}"
