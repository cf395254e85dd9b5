"""`python -m csi_vm` is the `csi-vm` command."""

from csi_vm.cli import main

main.run()
