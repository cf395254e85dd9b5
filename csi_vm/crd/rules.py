"""Decisions the controller and the node agent must take the same way."""

from __future__ import annotations

from csi_vm.crd import models as crd
from csi_vm.kube import objects

Json = objects.Json


def assigned_node(vm: Json) -> str:
    """Where the VM runs (status) or is to run (spec); "" when nobody said.

    The controller publishes the VM's disks there and the agent of that node
    alone starts or stops its guest.
    """
    running_on = (vm.get("status") or {}).get("nodeName")
    return str(running_on or crd.spec(vm, crd.VMSpec).node or "")


def volume_mode(pvc: Json) -> crd.VolumeMode:
    """The claim's volumeMode; an absent one is Filesystem, the API's default."""
    block = (pvc.get("spec") or {}).get("volumeMode") == crd.VolumeMode.BLOCK.value
    return crd.VolumeMode.BLOCK if block else crd.VolumeMode.FILESYSTEM
