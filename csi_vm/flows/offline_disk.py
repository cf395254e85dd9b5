"""Operations on one disk of a stopped VM: expand, import an image, export it."""

from __future__ import annotations

import dataclasses
import pathlib

from csi_vm import errors, spec
from csi_vm.flows import context, diskio, engine, plans, verify, volume_steps
from csi_vm.store import records, running


def _vol(d: records.Disk) -> volume_steps.Vol:
    return volume_steps.Vol(driver=d.driver, volume_id=d.volume_id, mode=d.mode, size=d.size)


def plan_expand(
    env: context.Env, *, vm: str, disk: str, size: int
) -> tuple[records.Disk, plans.Plan]:
    d = records.get_vm(env.store, vm).disk(disk)
    if size < d.size:
        raise errors.Rejected(
            f"disk {vm}/{disk} is {d.size} bytes; {size} would shrink it", hint="disks only grow"
        )
    if size == d.size:
        raise errors.Rejected(f"disk {vm}/{disk} is already {size} bytes")
    p = plans.disk_plan(env, disk=disk, driver=d.driver, operation="disk_expand")
    return d, plans.Plan(operation="expand", vm=vm, disks=(p,), detail=f"{d.size} -> {size} bytes")


def expand(env: context.Env, *, vm: str, disk: str, size: int) -> plans.Plan:
    running.require_stopped(env.store, vm, what="an offline expansion")
    d, plan = plan_expand(env, vm=vm, disk=disk, size=size)
    with engine.Flow(env, kind="expand", vm=vm, args={"disk": disk, "size": size}) as flow:
        if plan.strategy(disk) == "csi-expand":
            short = _expand_in_place(flow, d, size=size)
            if not short:
                flow.commit(
                    lambda cur: records.replace_disk_volume(
                        cur, vm=vm, disk=disk, volume_id=d.volume_id, size=size
                    )
                )
                return plan
            # An expansion cannot be undone: the volume may count as grown in
            # the driver. The disk moves to a new volume the node sees whole.
            records.forget_caps(env.store, d.driver)
            plan = _fallen_back(plan, disk, why=short)
        new = volume_steps.host_copy(
            flow, what=f"grow-{disk}", src=_vol(d), driver=d.driver, size=size, mode=d.mode
        )
        flow.commit(
            lambda cur: records.replace_disk_volume(
                cur, vm=vm, disk=disk, volume_id=new.volume_id, size=size
            ),
            after=[volume_steps.retire(_vol(d))],
        )
    return plan


def _expand_in_place(flow: engine.Flow, d: records.Disk, *, size: int) -> str:
    """Expand through CSI and look at the result; why the node does not show it, or ""."""
    answer = flow.run(
        "expand_volume",
        {"driver": d.driver, "volume_id": d.volume_id, "size": size, "mode": d.mode.value},
    )
    short = verify.growth(flow, _vol(d), size=size).shortfall(size)
    if short:
        return f"ControllerExpandVolume answered {answer['capacity']} bytes, but {short}"
    return ""


def _fallen_back(plan: plans.Plan, disk: str, *, why: str) -> plans.Plan:
    p = plan.disks[0]
    reason = f"{why}; expansions cannot be undone, so the disk was copied into a new, larger volume"
    fallen = dataclasses.replace(p, strategy="copy-to-larger", reason=reason)
    return dataclasses.replace(plan, disks=(fallen,))


def plan_import(
    env: context.Env, *, vm: str, disk: str, image: pathlib.Path
) -> tuple[records.Disk, plans.Plan]:
    """Every check of an import, and its plan; changes nothing (what --dry-run runs)."""
    running.require_stopped(env.store, vm, what="an import")
    d = records.get_vm(env.store, vm).disk(disk)
    info = diskio.inspect(image)
    if info.virtual_size > d.size:
        raise errors.Rejected(
            f"image {image} holds {info.virtual_size} bytes, more than disk {vm}/{disk} ({d.size})",
            hint=f"expand the disk first: csi-vm disk expand {vm} {disk} {info.virtual_size}",
        )
    if d.mode is spec.Mode.FILESYSTEM:
        # The disk's mode decides, not the driver's best: it stays an image file.
        p = plans.DiskPlan(
            disk=disk,
            driver=d.driver,
            strategy="filesystem-image",
            reason="the disk is in filesystem mode: an image file on a filesystem volume",
        )
    else:
        p = plans.disk_plan(env, disk=disk, driver=d.driver, operation="disk_import")
    detail = f"{info.format} image {image}"
    return d, plans.Plan(operation="import", vm=vm, disks=(p,), detail=detail)


def import_image(env: context.Env, *, vm: str, disk: str, image: pathlib.Path) -> plans.Plan:
    """Replace a disk's content with an image, through a new volume: a failed
    import leaves the old content untouched."""
    d, plan = plan_import(env, vm=vm, disk=disk, image=image)
    with engine.Flow(env, kind="import", vm=vm, args={"disk": disk, "image": str(image)}) as flow:
        new = volume_steps.new_volume(
            flow, what=f"import-{disk}", driver=d.driver, size=d.size, mode=d.mode
        )
        att = volume_steps.attach(flow, new)
        volume_steps.make_image(flow, att, size=d.size)
        flow.run(
            "import",
            {"image": str(image), "dst": att.path, "size": d.size, "what": f"{vm}: {disk}"},
        )
        volume_steps.detach(flow, att)
        flow.commit(
            lambda cur: records.replace_disk_volume(
                cur, vm=vm, disk=disk, volume_id=new.volume_id, size=d.size
            ),
            after=[volume_steps.retire(_vol(d))],
        )
    return plan


def check_export(
    env: context.Env, *, vm: str, disk: str, file: pathlib.Path, force: bool
) -> records.Disk:
    """Every check of an export; changes nothing (what --dry-run runs)."""
    d = records.get_vm(env.store, vm).disk(disk)
    if file.exists() and not force:
        raise errors.AlreadyExists(f"{file} exists", hint="choose another file or pass --force")
    if not file.parent.is_dir():
        raise errors.InvalidInput(f"directory {file.parent} does not exist")
    return d


def export(
    env: context.Env, *, vm: str, disk: str, file: pathlib.Path, fmt: str, force: bool = False
) -> None:
    d = check_export(env, vm=vm, disk=disk, file=file, force=force)
    with engine.Flow(env, kind="export", vm=vm, args={"disk": disk, "file": str(file)}) as flow:
        att = volume_steps.attach(flow, _vol(d))
        flow.run(
            "export",
            {"src": att.path, "file": str(file.resolve()), "format": fmt, "size": d.size,
             "what": f"{vm}: {disk}"},
        )  # fmt: skip
        volume_steps.detach(flow, att)
        flow.commit(lambda cur: None)
