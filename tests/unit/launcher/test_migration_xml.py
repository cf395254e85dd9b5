"""The destination XML of a migration: only disk sources (and the console log) change."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from launcher import migration

pytestmark = pytest.mark.timeout(10)

SOURCE = """<domain type='qemu'><name>web</name><uuid>0b7c1a9e-1111-4222-8333-944455556666</uuid>
<devices>
<disk type='block' device='disk'><driver name='qemu' type='raw' cache='none'/>
<source dev='/dev/loop3' index='3'><slices><slice type='storage' offset='0' size='1'/></slices>
</source><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/>
<source file='/a/data.img'/><target dev='vdb' bus='virtio'/></disk>
<serial type='file'><source path='/a/console.log' append='on'/><target port='0'/></serial>
</devices></domain>"""


def _disks(xml: str) -> dict[str, tuple[str | None, dict[str, str], bool]]:
    root = ElementTree.fromstring(xml)
    found = {}
    for disk in root.iter("disk"):
        source, target = disk.find("source"), disk.find("target")
        assert source is not None and target is not None
        found[target.get("dev", "")] = (
            disk.get("type"),
            dict(source.attrib),
            source.find("slices") is not None,
        )
    return found


def test_moved_disks_point_at_their_new_volumes_without_slices() -> None:
    xml = migration.dest_xml(
        SOURCE,
        {"vda": migration.NewSource(path="/b/vol.img", block=False)},
        console_log="/b/console.log",
    )
    disks = _disks(xml)
    assert disks["vda"] == ("file", {"file": "/b/vol.img"}, False)
    assert disks["vdb"] == ("file", {"file": "/a/data.img"}, False)  # not named: unchanged
    root = ElementTree.fromstring(xml)
    assert root.findtext("uuid") == "0b7c1a9e-1111-4222-8333-944455556666"
    serial = root.find("devices/serial/source")
    assert serial is not None and serial.get("path") == "/b/console.log"


def test_a_file_disk_can_move_onto_a_block_device() -> None:
    xml = migration.dest_xml(SOURCE, {"vdb": migration.NewSource(path="/dev/sdx", block=True)})
    assert _disks(xml)["vdb"] == ("block", {"dev": "/dev/sdx"}, False)
    serial = ElementTree.fromstring(xml).find("devices/serial/source")
    assert serial is not None and serial.get("path") == "/a/console.log"
