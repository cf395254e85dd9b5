"""Byte counts for people, in binary units: its own module, on the standard library alone.

`csi-vm vm show` prints sizes before it imports anything of csi-vm's
(csi_vm/cli/fastpath.py); csi_vm.sizes, which parses sizes too, costs it
the dataclasses and re modules.
"""

from __future__ import annotations


def binary(n: int) -> str:
    """`n` bytes in binary units, as tables show sizes: 512 B, 64 MiB, 1.5 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.4g} {unit}"
        value /= 1024
    raise AssertionError("unreachable: the loop returns at TiB")
