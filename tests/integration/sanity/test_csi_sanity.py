"""The official CSI conformance suite against the local driver, per configuration.

``full`` and ``without-<feature>`` for every feature the driver can switch
off: csi-sanity reads the capabilities and skips what a configuration does
not offer, so each must pass with no failure. Each runs with mount volumes
and, unless block is switched off, again with block volumes (VM disks): the
suite tests one access type per run.
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


# Without block, block volumes are refused by design (the project's own
# conformance suite checks that refusal), so that pair does not run.
RUNS = [
    pytest.param(without, access, id=f"{name}-{access}")
    for name, without in CONFIGURATIONS.items()
    for access in ("mount", "block")
    if not (access == "block" and Feature.BLOCK.value in without)
]


@pytest.mark.parametrize(("without", "access_type"), RUNS)
def test_csi_sanity_passes(
    csi_sanity: pathlib.Path,
    tmp_path: pathlib.Path,
    without: tuple[str, ...],
    access_type: str,
    record_property: pytest.RecordProperty,
) -> None:
    driver = driverproc.start_driver(tmp_path / "driver", without=without)
    try:
        outcome = sanity.run(
            csi_sanity, driver.endpoint, tmp_path / "sanity", access_type=access_type
        )
    finally:
        driver.stop()
    for key in ("passed", "skipped", "pending"):
        record_property(key, len(getattr(outcome, key)))
    print(
        f"csi-sanity {'without ' + ','.join(without) if without else 'full'}, "
        f"{access_type} volumes: {outcome.summary()}"
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
