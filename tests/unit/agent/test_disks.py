"""Block disks behind the kubelet's symlink: followed to the device, or a clear NotPublished.

The kubelet publishes a Block claim at
<kubelet>/plugins/kubernetes.io/csi/volumeDevices/publish/<pv>/<pod uid> (the
driver bind-mounts the device node there) and links
<kubelet>/pods/<pod uid>/volumeDevices/kubernetes.io~csi/<pv> to it.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import stat

import pytest

from csi_vm.agent import disks, state
from launcher import domain

pytestmark = pytest.mark.timeout(30)

UID = "0d5c6a8e-5b5e-4f0a-9a51-2f1f3c7c9d10"
PV = "pv-root"


def _paths(kubelet: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """(the pod's link, the kubelet's publish path it points at)."""
    link = kubelet / "pods" / UID / "volumeDevices" / "kubernetes.io~csi" / PV
    publish = kubelet / "plugins" / "kubernetes.io" / "csi" / "volumeDevices" / "publish" / PV / UID
    return link, publish


def _block_disk(link: pathlib.Path) -> disks.Published:
    return disks.Published(disk="root", target="vda", path=link, block=True)


def test_a_link_this_container_cannot_follow_says_what_to_mount(agent: state.Agent) -> None:
    link, publish = _paths(agent.kubelet_dir)
    link.parent.mkdir(parents=True)
    link.symlink_to(publish)  # absolute, as the kubelet makes it; the target is not mounted here
    with pytest.raises(disks.NotPublished) as raised:
        disks.for_domain(agent, _block_disk(link))
    assert str(publish) in raised.value.message
    assert raised.value.hint is not None
    assert str(agent.kubelet_dir / "plugins" / "kubernetes.io" / "csi") in raised.value.hint


def test_a_link_not_made_yet_is_waited_for(agent: state.Agent) -> None:
    link, _ = _paths(agent.kubelet_dir)
    quick = dataclasses.replace(agent, device_timeout_s=0.2)
    with pytest.raises(disks.NotPublished, match="did not become ready"):
        disks.for_domain(quick, _block_disk(link))


def _some_block_device() -> tuple[pathlib.Path, int]:
    """A block device of this machine with a size: (its /dev node, its device number)."""
    for sysdir in sorted(pathlib.Path("/sys/block").iterdir()):
        node = pathlib.Path("/dev") / sysdir.name
        if int((sysdir / "size").read_text()) > 0 and node.exists():
            return node, os.stat(node).st_rdev
    pytest.skip("no block device with a size on this machine")


@pytest.mark.integration
def test_a_published_link_gives_qemu_the_device_node(agent: state.Agent) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node, number = _some_block_device()
    link, publish = _paths(agent.kubelet_dir)
    publish.parent.mkdir(parents=True)
    # What the driver's bind mount leaves at the publish path: the device's node.
    os.mknod(publish, stat.S_IFBLK | 0o600, number)
    link.parent.mkdir(parents=True)
    link.symlink_to(publish)
    assert disks.for_domain(agent, _block_disk(link)) == domain.Disk(
        source=node, target="vda", kind=domain.DiskKind.BLOCK
    )
