"""The VolumeSnapshotClass each VolumeSnapshot the controller makes names.

In Kubernetes a CSI secret reaches the driver through a class, never through
csi-vm: the external-snapshotter reads the
`csi.storage.k8s.io/snapshotter-secret-name` and `-namespace` parameters of
the VolumeSnapshotClass and hands the Secret's data to CreateSnapshot, as
the external-provisioner does with a StorageClass's provisioner-secret-*
keys for CreateVolume. A VolumeSnapshot that names no class gets its
driver's default class, and is refused by the snapshot controller when the
driver's classes mark none as default; a class of another driver fails too.
So the controller names one: the class the user asked for, else the
driver's default, else the driver's only class. Only class objects are
read (they name Secrets); a Secret itself never is.
"""

from __future__ import annotations

from csi_vm.controller import context
from csi_vm.kube import models as kube


def for_storage_class(ctx: context.Context, storage_class: str, *, asked: str = "") -> str:
    """The class for a snapshot of a volume of ``storage_class``; "" to leave it to the cluster."""
    if asked:
        return asked
    driver = next((c.provisioner for c in ctx.api.storage_classes() if c.name == storage_class), "")
    return pick(ctx.api.snapshot_classes(), driver=driver)


def pick(classes: list[kube.VolumeSnapshotClassInfo], *, driver: str) -> str:
    """The driver's default class, else its only one; "" when there is none or no clear one."""
    own = sorted((c for c in classes if c.driver == driver), key=lambda c: c.name)
    defaults = [c for c in own if c.is_default]
    if len(defaults) == 1:
        return defaults[0].name
    if len(own) == 1:
        return own[0].name
    # Several and no single default: the snapshot controller's own rules
    # decide (and say why in the VolumeSnapshot's status); guessing could
    # pick a class without the driver's secrets.
    return ""
