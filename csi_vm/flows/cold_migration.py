"""Cold migration: stop the VM, copy its disks to the target node, start it there.

Only with the user's consent to downtime (`--allow-downtime`), for when a
live migration cannot work. Journaled like the rest: until the commit, a
failure or a kill -9 rolls back to the VM running on its source again, on its
original disks (`halt_for_move` is undone by starting it there).
"""

from __future__ import annotations

import dataclasses
import time

from csi_vm.flows import context, engine, migration_common, vmrun, volume_steps
from csi_vm.store import records, running


def migrate(env: context.Env, *, vm_name: str, to: str, reason: str) -> migration_common.Result:
    began = time.monotonic()
    run = running.get(env.store, vm_name)
    to_uri = env.cfg.node_config(to).libvirt
    vm = records.get_vm(env.store, vm_name)
    driver = vmrun.one_driver(vm)
    strategy, _, target_driver = migration_common.choose(env, driver=driver, to=to)
    copy = strategy == migration_common.STORAGE
    with engine.Flow(env, kind="cold-migrate", vm=vm_name, args={"to": to}) as flow:
        stopped = time.monotonic()
        halt = vmrun.launch_data(vm, node=run.node, boot=run.boot)
        flow.run("halt_for_move", {**halt, "grace_s": 0})
        todo, copied = [], 0
        for i, d in enumerate(vm.disks):
            move, done = _move_disk(flow, d, target=vmrun.target(i), driver=target_driver,
                                    nodes=(run.node, to), copy=copy)  # fmt: skip
            todo.append(move)
            copied += done
        moved = dataclasses.replace(vm, disks=tuple(_moved(m) for m in todo))
        flow.run("launch", vmrun.launch_data(moved, node=to, boot=run.boot))
        downtime_ms = int((time.monotonic() - stopped) * 1000)
        after = [volume_steps.retire(migration_common.vol(m.disk)) for m in todo] if copy else []
        flow.commit(
            lambda cur: migration_common.switch(cur, vm_name, todo, to=to, uri=to_uri), after=after
        )
    return migration_common.Result(
        vm=vm_name, source=run.node, target=to, strategy=migration_common.COLD, reason=reason,
        downtime_ms=downtime_ms, bytes_copied=copied,
        duration_ms=int((time.monotonic() - began) * 1000),
    )  # fmt: skip


def _moved(m: migration_common.Move) -> records.Disk:
    return dataclasses.replace(m.disk, driver=m.driver, volume_id=m.volume_id)


def _move_disk(
    flow: engine.Flow,
    d: records.Disk,
    *,
    target: str,
    driver: str,
    nodes: tuple[str, str],
    copy: bool,
) -> tuple[migration_common.Move, int]:
    """The disk's volume on the target node: a copy, or the same shared volume."""
    if not copy:
        return migration_common.Move(disk=d, target=target, driver=driver, volume_id=d.volume_id), 0
    source, to = nodes
    new = volume_steps.new_volume(
        flow, what=f"cold-{d.name}", driver=driver, size=d.size, mode=d.mode
    )
    src = volume_steps.attach(flow, migration_common.vol(d), node=source)
    dst = volume_steps.attach(flow, new, node=to)
    volume_steps.make_image(flow, dst, size=d.size)
    copied = flow.run(
        "copy",
        {"src": src.path, "dst": dst.path, "what": f"{d.vm}: {d.name}", "src_size": d.size,
         "size": d.size},
    )  # fmt: skip
    volume_steps.detach(flow, dst)
    volume_steps.detach(flow, src)
    move = migration_common.Move(disk=d, target=target, driver=driver, volume_id=new.volume_id)
    return move, int(copied["bytes"])
