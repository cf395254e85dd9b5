"""Which driver the suite judges, and what it must offer.

For an external endpoint the suite only knows what the driver advertises. For
the local reference driver it also knows the configuration, so a feature that
configuration must offer is never skipped as "not advertised": the test fails.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from .caps import Probe

#: Features the local reference driver can switch off with ``--without``.
LOCAL_FEATURES = (
    "snapshot",
    "clone",
    "expansion",
    "block",
    "multi-node",
    "stage-unstage",
    "group-snapshot",
)


@dataclasses.dataclass(frozen=True)
class Target:
    """The endpoints under test and, for the local driver, what it must offer."""

    name: str
    controller_endpoint: str
    node_endpoint: str
    #: features this local configuration must offer; None for an external driver
    expected: frozenset[str] | None
    #: mutable parameters the driver accepts (ControllerModifyVolume), if known
    mutable_parameters: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the local driver's log, shown with failures
    log_path: Path | None = None

    def demands(self, feature: str) -> bool:
        """Must this configuration offer `feature`?

        The local driver offers everything the suite checks except what its
        configuration switched off, so only external drivers may lack things.
        """
        if self.expected is None:
            return False
        return feature not in LOCAL_FEATURES or feature in self.expected


def require(target: Target, feature: str, available: bool, reason: str) -> None:
    """Skip a test that needs `feature` when the driver lacks it.

    A local configuration that is supposed to offer the feature fails instead:
    the full configuration must exercise everything.
    """
    if available:
        return
    if target.demands(feature):
        pytest.fail(f"{target.name} must offer {feature}, but {reason}")
    pytest.skip(reason)


def check_offer(target: Target, feature: str, offered: bool) -> None:
    """For the local driver, what it offers must match its configuration."""
    if target.expected is None:
        return
    expected = feature in target.expected
    assert offered == expected, (
        f"{target.name}: feature {feature} is {'offered' if offered else 'not offered'}, "
        f"but this configuration should {'offer' if expected else 'not offer'} it"
    )


def require_access(target: Target, probes: dict[str, Probe], access: str) -> None:
    """Skip block-access tests for drivers that refuse block volumes."""
    if access == "block":
        require(
            target,
            "block",
            probes["block"].accepted,
            f"driver refuses block access ({probes['block'].code.name}); "
            "checked in test_create_delete",
        )
