"""The local reference CSI driver: sparse files, loop devices, SQLite state."""
