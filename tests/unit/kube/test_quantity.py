"""Sizes read with the client's quantity parser, and what csi-vm adds to it."""

from __future__ import annotations

import pytest

from csi_vm import errors
from csi_vm.kube import quantity

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1Gi", 2**30),
        ("500M", 500 * 10**6),
        ("1.5Gi", 3 * 2**29),
        ("4096", 4096),
        ("1e3", 1000),
        (" 2Ki ", 2048),
        ("1Ei", 2**60),
        ("1500m", 2),
    ],
    ids=["Gi", "M", "fraction", "plain", "exponent", "spaces", "Ei", "milli-rounds-up"],
)
def test_quantities(text: str, size: int) -> None:
    assert quantity.to_bytes(text) == size


@pytest.mark.parametrize(
    "text",
    ["ten gigs", "", "10GB", "1ki", "-1Gi", "NaN", "Infinity"],
    ids=["words", "empty", "unknown-suffix", "lower-binary", "negative", "nan", "infinite"],
)
def test_a_bad_quantity_says_what_is_expected(text: str) -> None:
    with pytest.raises(errors.InvalidInput, match="such as 10Gi"):
        quantity.to_bytes(text)
