"""Sizes for the controller: `csi_vm.kube.quantity`, which reads them with the client's parser.

New code imports `csi_vm.kube.quantity` directly; this name stays while
`storage` still reads sizes through it.
"""

from __future__ import annotations

from csi_vm.kube import quantity

to_bytes = quantity.to_bytes
