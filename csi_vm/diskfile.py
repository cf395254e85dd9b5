"""A VM disk on a filesystem-mode volume: one raw image file.

A volume in filesystem mode holds the disk as the file `IMAGE_NAME` at the
root of its filesystem, wherever that is mounted. The local flows and the
launcher on one machine, the node agent, and the controller's host-copy Jobs
on Kubernetes all read and write that one name. Imports nothing, so every
layer may use it.
"""

from __future__ import annotations

IMAGE_NAME = "disk.img"
