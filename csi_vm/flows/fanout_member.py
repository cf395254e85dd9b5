"""One clone of a fan-out, as a journaled action of the fan-out's flow, with its undo.

Each clone is a flow of its own (kind "clone", locked on the new VM's name),
so a clone made is committed, and kept, however the fan-out ends. Its flow id
is derived from the fan-out's and the clone's number: after a crash the
journal tells a clone made (its flow done) from one never finished (rolled
back, or never begun), and a retry takes the next id.

    fanout_clone   make VM `target`: each disk by its strategy, from the
                   origin's volume, the fan-out's snapshot, or a copy of
                   `source` (the origin or a clone already made), then
                   compared with the origin (its size, then sampled blocks:
                   the origin's are read once per fan-out, each clone's
                   through its own device)
    data_bytes     what a host copy of an attached disk writes: its non-zero data
"""

from __future__ import annotations

import os
import time
from typing import Any

from csi_vm import spec
from csi_vm.copy import kernel, plan
from csi_vm.flows import context, engine, verify, volume_steps
from csi_vm.store import fanouts, journal, records

Data = dict[str, Any]

_MADE = (journal.DONE, journal.COMMITTED)
#: bytes read at a time when measuring data
_READ = 4 * 1024 * 1024


def attempt_id(fanout: str, index: int, attempt: int) -> str:
    return f"{fanout}-{index}" + (f".{attempt}" if attempt else "")


def _attempts(env: context.Env, data: Data) -> tuple[str | None, str]:
    """(the id of the attempt that made the clone or None, the id a new attempt takes)."""
    attempt = 0
    while True:
        flow_id = attempt_id(data["fanout"], data["index"], attempt)
        state = fanouts.flow_state(env.store, flow_id)
        if state is None:
            return None, flow_id
        if state in _MADE:
            return flow_id, flow_id
        attempt += 1


def _make(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    made, fresh = _attempts(env, data)
    if made is not None:  # made before a crash hid the answer
        return {"flow": made}
    origin = records.get_vm(env.store, data["origin"])
    source = records.get_vm(env.store, data["source"])
    target = data["target"]
    new_spec = spec.VMSpec.model_validate({**origin.spec.model_dump(), "name": target})
    child = engine.Flow(
        env, kind="clone", vm=target, args={"fanout": data["fanout"], "source": source.name}
    )
    child.id = fresh
    written = 0
    with child:
        vols = []
        for disk in origin.disks:
            vol, count = _disk(child, disk, source.disk(disk.name), data)
            vols.append(vol)
            written += count
        rows = [_row(target, d, v) for d, v in zip(origin.disks, vols, strict=True)]
        child.commit(lambda cur: records.insert_vm(cur, vm_spec=new_spec, disks=rows))
    return {"flow": fresh, "bytes": written}


def _disk(
    flow: engine.Flow, disk: records.Disk, src: records.Disk, data: Data
) -> tuple[volume_steps.Vol, int]:
    """The clone's copy of one disk, compared with the origin's; and the bytes it wrote."""
    strategy = data["strategies"][disk.name]
    what = f"{flow.vm}-{disk.name}"
    source_volume_id = disk.volume_id if strategy == "csi-clone" else ""
    source_snapshot_id = data["snapshots"].get(disk.name, "") if strategy != "host-copy" else ""
    new = volume_steps.new_volume(
        flow, what=what, driver=disk.driver, size=disk.size, mode=disk.mode,
        source_volume_id=source_volume_id, source_snapshot_id=source_snapshot_id,
    )  # fmt: skip
    new_att = volume_steps.attach(flow, new)
    written = 0
    if strategy == "host-copy":
        written = _copy(flow, what=what, src=src, dst=new_att, data=data)
    answer = {"csi-clone": "the clone ready", "snapshot-restore": "the volume restored"}
    verify.compare(
        flow, src_path=data["paths"][disk.name], new=new_att, size=disk.size, what=what,
        answer=answer.get(strategy, "the copy made"), full=data["full"], once=True,
    )  # fmt: skip
    volume_steps.detach(flow, new_att)
    return new, written


def _copy(
    flow: engine.Flow, *, what: str, src: records.Disk, dst: volume_steps.Attached, data: Data
) -> int:
    """Copy the tree source's disk: the origin is attached by the fan-out, a clone here."""
    if src.vm == data["origin"]:
        path = data["paths"][src.name]
        return volume_steps.copy_onto(
            flow, what=what, src_path=path, src_size=src.size, dst=dst, size=src.size
        )
    vol = volume_steps.Vol(driver=src.driver, volume_id=src.volume_id, mode=src.mode, size=src.size)
    att = volume_steps.attach(flow, vol)
    written = volume_steps.copy_onto(
        flow, what=what, src_path=att.path, src_size=src.size, dst=dst, size=src.size
    )
    volume_steps.detach(flow, att)
    return written


def _row(vm: str, d: records.Disk, vol: volume_steps.Vol) -> records.Disk:
    return records.Disk(
        vm=vm, name=d.name, driver=vol.driver, mode=vol.mode, size=vol.size, volume_id=vol.volume_id
    )


def _unmake(env: context.Env, data: Data) -> None:
    """Delete the clone, if this fan-out made it (a VM of that name may be another's)."""
    from csi_vm.flows import vms  # noqa: PLC0415 - vms is the caller's, through the journal

    made, _ = _attempts(env, data)
    if made is not None and records.find_vm(env.store, data["target"]) is not None:
        vms.delete(env, name=data["target"])


def _data_bytes(env: context.Env, data: Data, flow_id: str, seq: int) -> Data:
    """The bytes a sparse copy of the disk writes, and how fast it was read."""
    started = time.monotonic()
    found = read = 0
    buf = bytearray(_READ)
    with open(data["path"], "rb", buffering=0) as f:
        fd = f.fileno()
        for offset, length in kernel.data_extents(fd, size=data["size"]):
            for at in range(offset, offset + length, _READ):
                got = os.preadv(fd, [memoryview(buf)[: min(_READ, offset + length - at)]], at)
                found += plan.total(plan.data_runs(buf, length=got))
                read += got
    took = time.monotonic() - started
    return {"data_bytes": found, "read_rate": read / took if took > 0 else 0.0}


DO = {"fanout_clone": _make, "data_bytes": _data_bytes}
UNDO = {"fanout_clone": _unmake}
