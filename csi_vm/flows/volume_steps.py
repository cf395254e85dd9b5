"""Building blocks shared by the VM operations: journaled volume, attach and copy steps."""

from __future__ import annotations

import dataclasses
import uuid

from csi_vm import spec
from csi_vm.flows import engine, volume_actions


@dataclasses.dataclass(frozen=True, kw_only=True)
class Vol:
    """A CSI volume holding one disk."""

    driver: str
    volume_id: str
    mode: spec.Mode
    size: int  # the disk's size, not the volume's


@dataclasses.dataclass(frozen=True, kw_only=True)
class Attached:
    vol: Vol
    base: str
    path: str  # where the disk's bytes are: the device, or the image file
    node: str = ""  # the node it is published on; "" for this machine


def new_volume(
    flow: engine.Flow,
    *,
    what: str,
    driver: str,
    size: int,
    mode: spec.Mode,
    source_volume_id: str = "",
    source_snapshot_id: str = "",
) -> Vol:
    data = {
        "driver": driver,
        "name": flow.name(what),
        "size": size,
        "mode": mode.value,
        "source_volume_id": source_volume_id,
        "source_snapshot_id": source_snapshot_id,
    }
    result = flow.run("create_volume", data)
    return Vol(driver=driver, volume_id=result["volume_id"], mode=mode, size=size)


def snapshot(flow: engine.Flow, *, what: str, driver: str, volume_id: str) -> str:
    """A CSI snapshot of a volume; its id."""
    data = {"driver": driver, "name": flow.name(what), "source_volume_id": volume_id}
    snapshot_id: str = flow.run("create_snapshot", data)["snapshot_id"]
    return snapshot_id


def attach(flow: engine.Flow, vol: Vol, *, node: str = "") -> Attached:
    """Stage and publish a volume on a node (default: this machine)."""
    base = flow.env.state_dir / "attach" / flow.id / uuid.uuid4().hex[:8]
    data = {
        "driver": vol.driver,
        "volume_id": vol.volume_id,
        "mode": vol.mode.value,
        "base": str(base),
        "node": node,
    }
    result = flow.run("attach", data)
    return Attached(
        vol=vol,
        base=str(base),
        path=volume_actions.disk_path(result["target"], vol.mode.value),
        node=node,
    )


def detach(flow: engine.Flow, att: Attached) -> None:
    data = {
        "driver": att.vol.driver,
        "volume_id": att.vol.volume_id,
        "base": att.base,
        "node": att.node,
    }
    flow.run("detach", data)


def make_image(flow: engine.Flow, att: Attached, *, size: int) -> None:
    if att.vol.mode is spec.Mode.FILESYSTEM:
        target = att.path.rsplit("/", 1)[0]
        flow.run("make_image", {"target": target, "size": size})


def blank(flow: engine.Flow, *, what: str, driver: str, size: int, mode: spec.Mode) -> Vol:
    """A new empty disk: a blank volume, holding an empty image file in filesystem mode."""
    vol = new_volume(flow, what=what, driver=driver, size=size, mode=mode)
    if mode is spec.Mode.FILESYSTEM:
        att = attach(flow, vol)
        make_image(flow, att, size=size)
        detach(flow, att)
    return vol


def host_copy(
    flow: engine.Flow, *, what: str, src: Vol, driver: str, size: int, mode: spec.Mode
) -> Vol:
    """Copy a disk into a new volume through this node (the fallback of every operation).

    The source is only ever read.
    """
    dst = new_volume(flow, what=what, driver=driver, size=size, mode=mode)
    src_att = attach(flow, src)
    dst_att = attach(flow, dst)
    copy_onto(flow, what=what, src_path=src_att.path, src_size=src.size, dst=dst_att, size=size)
    detach(flow, dst_att)
    detach(flow, src_att)
    return dst


def copy_onto(
    flow: engine.Flow, *, what: str, src_path: str, src_size: int, dst: Attached, size: int
) -> int:
    """Copy a disk onto an attached new volume of `size` bytes; returns the bytes written."""
    make_image(flow, dst, size=size)
    # The sizes let the copy check that both ends are still their volumes. The
    # target is checked for the source's size: a copy onto an image file leaves
    # it that long, and the make_image below gives a larger target its size.
    done = flow.run(
        "copy",
        {"src": src_path, "dst": dst.path, "what": f"{flow.vm}: {what}",
         "src_size": src_size, "size": src_size},
    )  # fmt: skip
    make_image(flow, dst, size=size)  # a larger target keeps its full size
    return int(done.get("bytes", 0))


def retire(vol: Vol) -> tuple[str, dict[str, object]]:
    """A tidy-up step for commit(after=...): delete a volume no longer used."""
    return ("delete_volume", {"driver": vol.driver, "volume_id": vol.volume_id})
