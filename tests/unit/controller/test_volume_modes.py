"""A disk's claim by volumeMode: how much it asks for, and how large a disk it holds (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from csi_vm import diskfile
from csi_vm.controller import volumemode
from csi_vm.crd import models as crd
from csi_vm.crd import rules

pytestmark = pytest.mark.timeout(10)
MiB = 1 << 20
GiB = 1 << 30


@pytest.mark.parametrize(
    ("disk", "volume"),
    [
        (16 * MiB, 144 * MiB),
        (GiB, 1152 * MiB),
        (2 * GiB + 1, 2 * GiB + 129 * MiB),
        (10 * GiB, 10 * GiB + 640 * MiB),
    ],
    ids=["tiny-gets-the-floor", "1Gi-still-the-floor", "rounded-up-to-mib", "10Gi-a-sixteenth"],
)
def test_a_filesystem_volume_holds_its_image_and_the_filesystems_room(
    disk: int, volume: int
) -> None:
    assert diskfile.volume_bytes(disk) == volume


@pytest.mark.parametrize(
    ("mode", "asks"),
    [(crd.VolumeMode.BLOCK, "10Gi"), (crd.VolumeMode.FILESYSTEM, "10880Mi")],
    ids=["block-asks-for-the-disk", "filesystem-asks-for-more"],
)
def test_the_request_of_a_claim(mode: crd.VolumeMode, asks: str) -> None:
    assert volumemode.request("10Gi", mode) == asks


def _pvc(*, mode: str | None = None, asks: str | None = None, holds: str | None = None) -> Any:
    spec: dict[str, Any] = {}
    if mode:
        spec["volumeMode"] = mode
    if asks:
        spec["resources"] = {"requests": {"storage": asks}}
    notes = {volumemode.DISK_SIZE_ANNOTATION: holds} if holds else {}
    return {"metadata": {"annotations": notes}, "spec": spec}


@pytest.mark.parametrize(
    ("pvc", "held"),
    [
        (_pvc(mode="Filesystem", asks="1152Mi", holds="1Gi"), GiB),
        (_pvc(mode="Filesystem", asks="1Gi"), GiB),
        (_pvc(mode="Block", asks="2Gi"), 2 * GiB),
        (_pvc(), None),
    ],
    ids=["made-filesystem-claim", "users-filesystem-claim", "block-claim", "no-request"],
)
def test_the_disk_a_claim_holds(pvc: Any, held: int | None) -> None:
    assert volumemode.disk_bytes(pvc) == held


@pytest.mark.parametrize(
    ("pvc", "mode"),
    [
        (_pvc(mode="Block"), crd.VolumeMode.BLOCK),
        (_pvc(mode="Filesystem"), crd.VolumeMode.FILESYSTEM),
        (_pvc(), crd.VolumeMode.FILESYSTEM),
    ],
    ids=["block", "filesystem", "absent-is-the-apis-default"],
)
def test_the_mode_of_a_claim(pvc: Any, mode: crd.VolumeMode) -> None:
    assert rules.volume_mode(pvc) is mode


@pytest.mark.parametrize(
    ("entry", "mode"),
    [
        ({"volumeMode": "Filesystem"}, crd.VolumeMode.FILESYSTEM),
        ({"volumeMode": "Block"}, crd.VolumeMode.BLOCK),
        ({}, crd.VolumeMode.BLOCK),
    ],
    ids=["filesystem", "block", "recorded-before-modes-were"],
)
def test_the_mode_a_snapshot_recorded(entry: Any, mode: crd.VolumeMode) -> None:
    assert volumemode.recorded(entry) is mode
