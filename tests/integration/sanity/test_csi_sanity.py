"""The official CSI conformance suite against the local driver, per configuration.

``full`` and ``without-<feature>`` for every feature the driver can switch
off: csi-sanity reads the capabilities and skips what a configuration does
not offer, so each must pass with no failure.
"""

from __future__ import annotations

import pathlib

import pytest

from csi_vm.localdriver.config import Feature
from tests.support import driverproc

from . import sanity

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CONFIGURATIONS: dict[str, tuple[str, ...]] = {
    "full": (),
    **{f"without-{feature.value}": (feature.value,) for feature in Feature},
}


@pytest.mark.parametrize("without", CONFIGURATIONS.values(), ids=CONFIGURATIONS.keys())
def test_csi_sanity_passes(
    csi_sanity: pathlib.Path,
    tmp_path: pathlib.Path,
    without: tuple[str, ...],
    record_property: pytest.RecordProperty,
) -> None:
    driver = driverproc.start_driver(tmp_path / "driver", without=without)
    try:
        outcome = sanity.run(csi_sanity, driver.endpoint, tmp_path / "sanity")
    finally:
        driver.stop()
    for key in ("passed", "skipped", "pending"):
        record_property(key, len(getattr(outcome, key)))
    print(
        f"csi-sanity {'without ' + ','.join(without) if without else 'full'}: {outcome.summary()}"
    )
    if outcome.failed:
        failures = "\n".join(
            f"- {name}: {sanity.gist(why)}" for name, why in outcome.failed.items()
        )
        pytest.fail(f"csi-sanity: {outcome.summary()}\n{failures}", pytrace=False)
    if not outcome.passed or outcome.returncode != 0:
        pytest.fail(
            f"csi-sanity exited {outcome.returncode} after {outcome.summary()}:\n"
            f"{outcome.output[-4000:]}",
            pytrace=False,
        )
