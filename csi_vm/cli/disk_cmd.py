"""`csi-vm disk ...` and `csi-vm snapshot ...`."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import pathlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import typer

from csi_vm import errors, sizes
from csi_vm.cli import tables, vmenv
from csi_vm.cli.vm_cmd import CFG, DB, DRY, FMT, NO_HEADERS
from csi_vm.cli.vmenv import Output

if TYPE_CHECKING:
    from csi_vm.store import records

# The spec, the flows and the store are imported by the commands that use
# them: `disk --help` and `snapshot --help` need none of them.

disk_app = typer.Typer(
    help="Import, export and expand the disks of stopped VMs.", no_args_is_help=True
)
snap_app = typer.Typer(
    help="VM snapshots: CSI snapshots where the driver can, host copies where not.",
    no_args_is_help=True,
)


class ImageFormat(enum.StrEnum):
    RAW = "raw"
    QCOW2 = "qcow2"


@disk_app.command("import")
def import_(
    vm: str = typer.Argument(..., help="The VM."),
    disk: str = typer.Argument(..., help="The disk, by its name in the VM spec."),
    image: pathlib.Path = typer.Argument(..., help="A raw or qcow2 image file."),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Replace a disk's content with a raw or qcow2 image.

    The image goes into a new volume that replaces the old one only when
    complete: a failed import changes nothing.

    Example:

        csi-vm disk import web-1 root ./root.qcow2 --dry-run
    """
    from csi_vm.flows import offline_disk  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        if dry_run:
            _, plan = offline_disk.plan_import(env, vm=vm, disk=disk, image=image)
        else:
            plan = offline_disk.import_image(env, vm=vm, disk=disk, image=image)
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run, no_headers=no_headers)


@disk_app.command("export")
def export(
    vm: str = typer.Argument(..., help="The VM."),
    disk: str = typer.Argument(..., help="The disk, by its name in the VM spec."),
    file: pathlib.Path = typer.Argument(..., help="The image file to write."),
    image_format: ImageFormat = typer.Option(
        ImageFormat.RAW, "--format", help="raw (sparse) or qcow2."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite FILE if it exists."),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Write a disk's content to an image file.

    The file is written under a temporary name and renamed when complete.

    Example:

        csi-vm disk export web-1 root ./root.qcow2 --format qcow2
    """
    from csi_vm.flows import offline_disk  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        d = offline_disk.check_export(env, vm=vm, disk=disk, file=file, force=force)
        if not dry_run:
            offline_disk.export(
                env, vm=vm, disk=disk, file=file, fmt=image_format.value, force=force
            )
    result: dict[str, object] = {
        "vm": vm,
        "disk": disk,
        "file": str(file),
        "format": image_format.value,
        "size": d.size,
    }
    _report("export", result, fmt=fmt, dry_run=dry_run)


@disk_app.command("expand")
def expand(
    vm: str = typer.Argument(..., help="The VM."),
    disk: str = typer.Argument(..., help="The disk, by its name in the VM spec."),
    size: str = typer.Argument(..., help="The new size. " + sizes.HELP),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Grow a disk: CSI expansion, else a copy into a new, larger volume (switched atomically).

    Example:

        csi-vm disk expand web-1 root 20Gi --dry-run
    """
    from csi_vm import spec  # noqa: PLC0415 - see the imports
    from csi_vm.flows import offline_disk, online  # noqa: PLC0415 - see the imports
    from csi_vm.store import running  # noqa: PLC0415 - see the imports

    notes: list[str] = []
    try:
        new_size = spec.parse_size(size, notes=notes)
    except ValueError as err:
        raise errors.InvalidInput(str(err)) from err
    for note in notes:
        vmenv.err_console.print(f"note: {note}", markup=False)
    with vmenv.environment(cfg, db) as env:
        if running.find(env.store, vm) is not None:  # the VM runs: grow it under the guest
            plan = online.plan_expand(env, vm=vm, disk=disk, size=new_size)
            if not dry_run:
                plan = online.expand(env, vm=vm, disk=disk, size=new_size)
        elif dry_run:
            _, plan = offline_disk.plan_expand(env, vm=vm, disk=disk, size=new_size)
        else:
            plan = offline_disk.expand(env, vm=vm, disk=disk, size=new_size)
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run, no_headers=no_headers)


@snap_app.command("create")
def snap_create(
    vm: str = typer.Argument(..., help="The VM to snapshot."),
    name: str | None = typer.Option(
        None, "--name", help="Snapshot name (default: VM name and time)."
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Restore each CSI snapshot once and compare every block with its disk "
        "(default: a sample).",
    ),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Snapshot every disk of a VM (online while it runs: frozen by its guest agent, if any).

    Example:

        csi-vm snapshot create web-1 --name before-upgrade
    """
    from csi_vm.flows import online, plans, snapshots  # noqa: PLC0415 - see the imports
    from csi_vm.store import records, running  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        if dry_run:  # the name's checks too: a dry run refuses what the real one would
            snapshots.checked_name(env, vm=vm, name=name)
        if running.find(env.store, vm) is not None:
            plan = online.plan_snapshot(env, records.get_vm(env.store, vm))
            if not dry_run:
                result = online.snapshot(env, vm_name=vm, name=name)
                name = result.snapshot.name
                detail = f"as {name}, online, {result.consistency}: {result.why}"
                plan = dataclasses.replace(result.plan, detail=detail)
        elif dry_run:
            plan = snapshots.plan_create(env, records.get_vm(env.store, vm))
        else:
            snap, plan = snapshots.create(env, vm_name=vm, name=name, verify=verify)
            name = snap.name
            plan = plans.Plan(
                operation=plan.operation, vm=plan.vm, disks=plan.disks, detail=f"as {snap.name}"
            )
    if fmt is Output.NAME and name is not None:
        vmenv.names([("snapshot", name)])
        return
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run, no_headers=no_headers)


@snap_app.command("list")
def snap_list(
    vm: str | None = typer.Argument(None, help="Only the snapshots of this VM."),
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """List snapshots (of one VM, or all).

    Example:

        csi-vm snapshot list web-1 -o name
    """
    from csi_vm.store import records  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env, vmenv.reader_may_leave():
        # A page at a time, as `vm list`: a fleet's snapshots start at once.
        pages = records.snapshot_pages(env.store, vm)
        _show_snaps(pages, fmt=fmt, no_headers=no_headers, title=lambda n: f"{n} snapshots")


@snap_app.command("show")
def snap_show(
    name: str = typer.Argument(..., help="The snapshot's name."),
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Show one snapshot: its row of `snapshot list`; -o yaml or json for the CSI objects behind it.

    Example:

        csi-vm snapshot show before-upgrade -o yaml
    """
    from csi_vm.store import records  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db, quiet=True, read_only=True) as env:
        snap = records.get_snapshot(env.store, name)
    if not fmt.tabular and fmt is not Output.NAME:
        vmenv.emit(_snap_dict(snap), fmt=fmt)
        return
    _show_snaps([[snap]], fmt=fmt, no_headers=no_headers, title=lambda _: f"snapshot {name}")


SNAP_COLUMNS = (
    tables.Column("name"),
    tables.Column("vm"),
    tables.Column("created"),
    tables.Column("disks"),
    tables.Column("size", wide=True),
    tables.Column("objects", wide=True),
)


def _show_snaps(
    pages: Iterable[list[records.Snapshot]],
    *,
    fmt: Output,
    no_headers: bool,
    title: Callable[[int], str],
) -> None:
    if not fmt.tabular:
        dicts = ([_snap_dict(s) for s in page] for page in pages)
        vmenv.emit_pages(dicts, fmt=fmt, kind="snapshot")
        return
    tables.stream_stdout(
        lambda: vmenv.console,
        columns=SNAP_COLUMNS,
        pages=([_snap_row(s) for s in page] for page in pages),
        layout=fmt.layout(no_headers=no_headers),
        title=title,
    )


def _snap_row(s: records.Snapshot) -> tuple[str, ...]:
    return (
        s.name,
        s.vm,
        _when(s.created),
        ", ".join(f"{d.disk} ({d.strategy})" for d in s.disks),
        sizes.binary(sum(d.size for d in s.disks)),
        ", ".join(f"{d.disk}={d.object_id}" for d in s.disks),
    )


@snap_app.command("restore")
def snap_restore(
    name: str = typer.Argument(..., help="The snapshot to restore."),
    as_vm: str | None = typer.Option(
        None, "--as", help="Restore into a new VM of this name instead of in place."
    ),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    no_headers: bool = NO_HEADERS,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Restore a snapshot, in place (the old volumes are retired after success) or as a new VM.

    Each restored CSI volume must hold the whole disk and the blocks sampled
    when the snapshot was taken; a snapshot recorded without samples (taken
    online, or by an older csi-vm) is checked for size only, and the plan says
    so. There is no --verify: a snapshot keeps no source to compare in full.

    Example:

        csi-vm snapshot restore before-upgrade --as web-1-old
    """
    from csi_vm.flows import vms  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        if dry_run:
            plan = vms.plan_restore(env, snapshot=name, as_vm=as_vm)
        else:
            plan = vms.restore(env, snapshot=name, as_vm=as_vm)
    vmenv.show_plan(plan, fmt=fmt, dry_run=dry_run, no_headers=no_headers)


@snap_app.command("delete")
def snap_delete(
    name: str = typer.Argument(..., help="The snapshot to delete."),
    dry_run: bool = DRY,
    fmt: Output = FMT,
    cfg: pathlib.Path | None = CFG,
    db: pathlib.Path | None = DB,
) -> None:
    """Delete a snapshot and the CSI snapshots or volumes behind it.

    Example:

        csi-vm snapshot delete before-upgrade
    """
    from csi_vm.flows import snapshots  # noqa: PLC0415 - see the imports
    from csi_vm.store import records  # noqa: PLC0415 - see the imports

    with vmenv.environment(cfg, db) as env:
        snap = records.get_snapshot(env.store, name)
        if not dry_run:
            snapshots.delete(env, name=name)
    _report("delete snapshot", _snap_dict(snap), fmt=fmt, dry_run=dry_run, kind="snapshot")


def _report(
    what: str, result: dict[str, object], *, fmt: Output, dry_run: bool, kind: str = "vm"
) -> None:
    """A one-object result: a line for people, the object for scripts."""
    if fmt is Output.NAME:
        vmenv.names([(kind, str(result.get("name") or result.get("vm")))])
        return
    if not fmt.tabular:
        vmenv.emit({"operation": what, "dry_run": dry_run, **result}, fmt=fmt)
        return
    subject = result.get("name") or f"{result.get('vm')}/{result.get('disk')}"
    vmenv.console.print(f"{'would ' + what if dry_run else what + ' done'}: {subject}")


def _snap_dict(s: records.Snapshot) -> dict[str, object]:
    return {
        "name": s.name,
        "vm": s.vm,
        "created": _when(s.created),
        "disks": [
            {
                "disk": d.disk,
                "driver": d.driver,
                "strategy": d.strategy,
                "object_id": d.object_id,
                "size": d.size,
                "group_id": d.group_id,
            }
            for d in s.disks
        ],
    }


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")
