"""The local driver's clones and snapshots share blocks on XFS with reflink, and copy on ext4.

The driver's state dir is put on a fresh filesystem (a sparse file, mounted
through an auto-clearing loop device); a volume gets data, then a clone and
a snapshot of it are taken over gRPC. Where the filesystem has reflink, they
cost no space and their extents are shared; on ext4 the data is copied.
"""

from __future__ import annotations

import os
import pathlib
import random
import subprocess
from collections.abc import Iterator

import pytest

from csi_vm.csi.pb import csi_pb2 as pb
from tests.support import driverproc

from . import csi

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

MiB = 1 << 20
#: mkfs.xfs refuses filesystems under 300 MiB; the backing file is sparse.
FS_SIZE = 1024 * MiB
DATA = 64 * MiB
MKFS = {
    "xfs": ["mkfs.xfs", "-q", "-m", "reflink=1"],
    "ext4": ["mkfs.ext4", "-q"],
}


@pytest.fixture(params=["xfs", "ext4"])
def state_fs(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[pathlib.Path]:
    backing = tmp_path / "fs.img"
    with backing.open("wb") as f:
        f.truncate(FS_SIZE)
    subprocess.run([*MKFS[request.param], str(backing)], check=True)
    mount = tmp_path / request.param
    mount.mkdir()
    subprocess.run(["mount", "-o", "loop", str(backing), str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def on_fs(state_fs: pathlib.Path, tmp_path: pathlib.Path) -> Iterator[csi.Stubs]:
    drv = driverproc.start_driver(tmp_path / "driver", state_dir=state_fs / "state")
    stubs = csi.connect(drv.endpoint)
    yield stubs
    stubs.close()
    drv.stop()


def _used(path: pathlib.Path) -> int:
    os.sync()
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def _shared_extents(path: pathlib.Path) -> int:
    out = subprocess.run(["filefrag", "-v", str(path)], check=True, capture_output=True, text=True)
    return sum(1 for line in out.stdout.splitlines() if "shared" in line)


def _fill(image: pathlib.Path) -> bytes:
    """DATA bytes of random data in 1 MiB pieces, written into the volume's image."""
    rng = random.Random(15)
    with image.open("r+b") as f:
        for slot in sorted(rng.sample(range(256), DATA // MiB)):
            f.seek(slot * MiB)
            f.write(rng.randbytes(MiB))
        f.flush()
        os.fsync(f.fileno())
    return image.read_bytes()


def test_clone_and_snapshot_share_blocks_where_the_filesystem_can(
    on_fs: csi.Stubs, state_fs: pathlib.Path
) -> None:
    volumes = state_fs / "state" / "volumes"
    source = csi.create_volume(on_fs, "source", size=256 * MiB, cap=csi.block_cap())
    data = _fill(volumes / f"{source.volume_id}.img")
    before = _used(state_fs)
    clone = csi.create_volume(
        on_fs,
        "clone",
        size=256 * MiB,
        cap=csi.block_cap(),
        source=pb.VolumeContentSource(
            volume=pb.VolumeContentSource.VolumeSource(volume_id=source.volume_id)
        ),
    )
    snap = csi.create_snapshot(on_fs, "snap", source.volume_id)
    grown = _used(state_fs) - before
    clone_image = volumes / f"{clone.volume_id}.img"
    snap_image = state_fs / "state" / "snapshots" / f"{snap.snapshot_id}.img"
    assert clone_image.read_bytes() == data
    assert snap_image.read_bytes() == data
    if state_fs.name == "xfs":
        assert grown < 4 * MiB  # two copies of the data would take 128 MiB
        assert _shared_extents(clone_image) > 0
        assert _shared_extents(snap_image) > 0
    else:
        assert grown >= 2 * DATA
        assert _shared_extents(clone_image) == 0
