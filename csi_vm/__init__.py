"""csi-vm: a storage-aware CSI integration layer for virtual machines."""
