"""Which VolumeSnapshotClass the controller names: the driver's default, else its only one."""

from __future__ import annotations

import pytest

from csi_vm.controller import snapclass
from csi_vm.kube import models as kube

pytestmark = pytest.mark.timeout(10)


def _cls(name: str, driver: str, *, default: bool = False) -> kube.VolumeSnapshotClassInfo:
    return kube.VolumeSnapshotClassInfo(
        name=name, driver=driver, deletion_policy="Delete", is_default=default
    )


@pytest.mark.parametrize(
    ("classes", "want"),
    [
        ([], ""),
        ([_cls("only", "a")], "only"),
        ([_cls("x", "a"), _cls("dflt", "a", default=True)], "dflt"),
        ([_cls("x", "a"), _cls("y", "a")], ""),
        ([_cls("x", "a", default=True), _cls("y", "a", default=True)], ""),
        ([_cls("theirs", "b", default=True), _cls("ours", "a")], "ours"),
        ([_cls("theirs", "b", default=True)], ""),
    ],
    ids=["none", "only-one", "default", "ambiguous", "two-defaults", "other-driver", "foreign"],
)
def test_pick(classes: list[kube.VolumeSnapshotClassInfo], want: str) -> None:
    assert snapclass.pick(classes, driver="a") == want
