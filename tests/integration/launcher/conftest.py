"""A node for launcher tests: the local CSI driver, the system libvirtd, the counter guest."""

from __future__ import annotations

import dataclasses
import pathlib
import time
import uuid
from collections.abc import Iterator

import pytest

from csi_vm.csi import client, models
from launcher import counter, devices, domain, guest, libvirt_conn, node
from tests.support import driverproc, libvirtnode

MIB = 1 << 20
BLOCK_RWO = models.VolumeCapability(
    mode=models.VolumeMode.BLOCK, access=models.AccessMode.SINGLE_NODE_WRITER
)
#: "a few seconds" under TCG (LAB.md); this only guards against a hung boot
BOOT_LIMIT_S = 60.0


@dataclasses.dataclass
class Lab:
    driver: driverproc.DriverProcess
    csi: client.Client
    conn: libvirt_conn.Connection
    node: node.Node
    guest: guest.GuestImage

    def block_volume(self, name: str, *, size: int = 64 * MIB) -> str:
        return self.csi.create_volume(name, size=size, capabilities=(BLOCK_RWO,)).volume_id

    def counter_vm(self, name: str, volume_id: str) -> node.VmOnVolumes:
        return node.VmOnVolumes(
            name=name,
            uuid=uuid.uuid4(),
            memory_mib=128,
            disks=(node.VolumeDisk(volume_id=volume_id, capability=BLOCK_RWO),),
            boot=domain.DirectBoot(
                kernel=self.guest.kernel,
                initramfs=self.guest.initramfs,
                cmdline=self.guest.cmdline,
            ),
        )

    def published_device(self, vm_name: str) -> pathlib.Path:
        return published_device(self.node, vm_name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    conn = libvirtnode.require_system()
    built = guest.build()
    tmp = tmp_path_factory.mktemp("launcher")
    drv = driverproc.start_driver(tmp / "driver")
    csi = client.Client(drv.endpoint)
    yield Lab(drv, csi, conn, node.Node(csi=csi, conn=conn, state_dir=tmp / "node"), built)
    csi.close()
    drv.stop()
    conn.close()


def published_device(on: node.Node, vm_name: str, target: str = "vda") -> pathlib.Path:
    """The real device behind a VM disk's CSI publish target, for reading it from the host."""
    return devices.describe(on.vm_dir(vm_name) / "disks" / target / "publish").node


def wait_for_counter(disk: pathlib.Path, *, above: int, within: float) -> int:
    """Poll the disk until the guest wrote a value above `above`; return it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = counter.read_counter(disk)
        if value > above:
            return value
        time.sleep(0.05)
    raise AssertionError(f"counter on {disk} stayed at <= {above} for {within} s")


def loops_backing(image: pathlib.Path) -> list[str]:
    found = []
    for backing in pathlib.Path("/sys/block").glob("loop*/loop/backing_file"):
        if backing.read_text().strip() == str(image):
            found.append(backing.parent.parent.name)
    return found


def backing_file(device: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(
        (pathlib.Path("/sys/block") / device.name / "loop/backing_file").read_text().strip()
    )


def mounts_under(path: pathlib.Path) -> list[str]:
    prefix = str(path)
    points = [
        line.split()[4] for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
    ]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]
