"""csi-vm: a storage-aware CSI integration layer for virtual machines."""

#: the release, as pyproject.toml names it (a test keeps the two equal);
#: `csi-vm version` reads it here because importlib.metadata costs start-up
__version__ = "0.1.0"
