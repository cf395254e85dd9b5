"""`python -m csi_vm` is the `csi-vm` command."""

from csi_vm.cli import fastpath

fastpath.run()
