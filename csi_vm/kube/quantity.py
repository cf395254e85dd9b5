"""Kubernetes resource quantities ("10Gi", "500M", "1e9") as byte counts.

The grammar is the client's own (`kubernetes.utils.parse_quantity`), so csi-vm
reads a size as every other Kubernetes tool does. What a size needs on top:
a whole, finite, non-negative number of bytes.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable

from kubernetes import utils as k8s_utils

from csi_vm import errors

# The client's parser carries no annotations; a typed name keeps mypy --strict
# on this module without blanket ignores.
_parse: Callable[[str], decimal.Decimal] = k8s_utils.parse_quantity


def to_bytes(text: str) -> int:
    """Bytes in ``text``; a fraction of a byte rounds up, as the API server's Value() does."""
    try:
        value = _parse(text.strip())
    except (ValueError, decimal.DecimalException) as err:
        raise _not_a_size(text) from err
    # Decimal also reads "NaN", "Infinity" and signs, which no size is.
    if not value.is_finite() or value < 0:
        raise _not_a_size(text)
    return math.ceil(value)


def _not_a_size(text: str) -> errors.InvalidInput:
    return errors.InvalidInput(f"{text!r} is not a size such as 10Gi or 500M")
