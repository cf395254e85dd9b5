"""Running VMs on the real cluster (launcher Pods) against the same VMs run by the CLI.

Imported by bench/cluster.py (--part start, --part migrate); each part
prints its own table. Every figure is the median of --runs, beside the
same thing done by the CLI outside Kubernetes in this process (the
baseline, named in the table), as a ratio:

- start: from creating a CsiVM with ``running: true`` until the counter
  guest's first acknowledged write (its "CSIVMCTR <n>" on the console log
  in the launcher's run directory, where the bench puts the guest's kernel
  to boot), against `csi-vm vm start --counter-guest` on the local driver
  (the flow the command runs) until the first record on its disk; and,
  until the CsiVM is Running (qemu started in its launcher Pod) against
  `csi-vm vm start` of a guest booting its blank disk returning. A
  cluster whose launchers take no kernel to boot gets "not measured" for
  the counter guest, with why.
- migrate: shared-volume and storage migration of a VM with a 1 GiB disk
  of random data: qemu's downtime (median and max) and the total time
  from creating the CsiVMMigration until it Succeeded, against
  `csi-vm migrate` between two libvirt nodes of this machine
  (bench/migrate.py's set-up, imported). A migration the cluster does not
  carry out is "not measured", with the phase and message it gave.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import re
import shutil
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from bench import migrate as cli_migrate
from csi_vm import config, errors, spec
from csi_vm.agent import launched
from csi_vm.crd import kinds, vmpod
from csi_vm.flows import context, migrate, vmrun, vms
from csi_vm.kube import objects
from csi_vm.store import db, running
from launcher import counter, libvirt_conn
from tests.integration.cluster import disks
from tests.support import driverproc, libvirtnode
from tests.support.cluster import addons, kubectl, layout

Json = dict[str, Any]
POLL = 0.2  # seconds between two reads of an object being timed (one GET, a few ms)
TIMEOUT = 900
QUIET = ("--log-level", "WARNING")
START_DISK = "64Mi"
START_BASELINE = "csi-vm vm start (local driver, system libvirtd)"
MIGRATE_BASELINE = "csi-vm migrate (local drivers, two libvirt nodes of this machine)"
#: the classes `scripts/cluster up` makes for migrations: one shared by both
#: nodes (RWX block), one of node-local volumes on either node
CLASSES = {migrate.SHARED: "csi-vm-shared", migrate.STORAGE: "csi-vm-nodes"}
_DOWNTIME = re.compile(r"downtime (\d+) ms")
_COUNTED = re.compile(r"CSIVMCTR \d+\r?\n")


class BenchFailed(RuntimeError):
    """A step failed or never finished: the message says which."""


class NotMeasured(RuntimeError):
    """The cluster did not carry the operation out: the message is what it gave."""


def until(what: str, check: Callable[[], Any], *, timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` every POLL seconds until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise BenchFailed(f"{what}: not within {timeout:.0f} s")
        time.sleep(POLL)


# --- the CLI side -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CliLab:
    env: context.Env
    tmp: pathlib.Path


@contextmanager
def cli_lab(base: pathlib.Path) -> Iterator[CliLab]:
    """Two libvirt nodes and their drivers: node-local on each, and one shared by both."""
    try:
        libvirt_conn.Connection.open(libvirt_conn.SYSTEM_URI).close()
    except errors.Unreachable as err:
        raise BenchFailed(f"{err.message}: start it with scripts/libvirtd-start") from None
    uri_b = libvirtnode.start(cli_migrate.NODE_B)
    shared_state = base / "shared-state"
    drivers = {
        "local-a": driverproc.start_driver(base / "a", node_id="node-a", extra_args=QUIET),
        "local-b": driverproc.start_driver(base / "b", node_id="node-b", extra_args=QUIET),
        "shared-a": driverproc.start_driver(
            base / "sa", node_id="node-a", shared=True, state_dir=shared_state, extra_args=QUIET
        ),
        "shared-b": driverproc.start_driver(
            base / "sb", node_id="node-b", shared=True, state_dir=shared_state, extra_args=QUIET
        ),
    }
    ep = {name: d.endpoint for name, d in drivers.items()}
    cfg = {
        "node": "node-a",
        "nodes": {"node-a": {}, "node-b": {"libvirt": uri_b, "driver": "local-b"}},
        "drivers": {
            "local-a": {"endpoint": ep["local-a"], "nodes": {"node-a": ep["local-a"]}},
            "local-b": {"endpoint": ep["local-b"], "nodes": {"node-b": ep["local-b"]}},
            "shared": {
                "endpoint": ep["shared-a"],
                "nodes": {"node-a": ep["shared-a"], "node-b": ep["shared-b"]},
                "assert": ["multi_node_shared"],
            },
        },
    }
    (base / "config.yaml").write_text(yaml.safe_dump(cfg))
    env = context.Env(
        cfg=config.load(base / "config.yaml"),
        store=db.Store(base / "db"),
        state_dir=base / "state",
    )
    try:
        yield CliLab(env=env, tmp=base)
    finally:
        try:
            for run in running.list_all(env.store):
                vmrun.stop(env, vm_name=run.vm, grace_s=0)
        finally:
            env.close()
            for drv in drivers.values():
                drv.stop()
            libvirtnode.stop(cli_migrate.NODE_B)


def _create(lab: CliLab, name: str, *, driver: str, size: int, image: pathlib.Path | None) -> None:
    disk: Json = {"name": "root", "size": size, "driver": driver, "mode": "block"}
    if image is not None:
        disk["source"] = {"image": str(image)}
    vms.create(
        lab.env, spec.VMSpec.model_validate({"name": name, "memory_mib": 128, "disks": [disk]})
    )


@dataclasses.dataclass(frozen=True)
class CliStart:
    disk_boot: list[float]  # vm start until it returned, qemu running
    counter: list[float]  # vm start with the counter guest until its first write


def cli_start(lab: CliLab, runs: int) -> CliStart:
    plain, counted = [], []
    for i in range(runs):
        name = f"start-{i}"
        _create(lab, name, driver="local-a", size=64 << 20, image=None)
        began = time.monotonic()
        vmrun.start(lab.env, vm_name=name)
        plain.append(time.monotonic() - began)
        vmrun.stop(lab.env, vm_name=name, grace_s=0)
        began = time.monotonic()
        vmrun.start(lab.env, vm_name=name, boot=vmrun.counter_guest())
        device = cli_migrate._device(lab.env, name)
        until(f"the counter of {name}", lambda d=device: counter.read_record(d))
        counted.append(time.monotonic() - began)
        vmrun.stop(lab.env, vm_name=name, grace_s=0)
        vms.delete(lab.env, name=name)
        print(
            f"  CLI start {i}: {plain[-1]:.2f} s; counter guest writing {counted[-1]:.2f} s",
            flush=True,
        )
    return CliStart(plain, counted)


@dataclasses.dataclass(frozen=True)
class Migrations:
    downtime_ms: list[int]
    total_s: list[float]
    #: why the migrations stopped before all were made (the cluster's phase and message)
    stopped: str = ""


def cli_migrations(lab: CliLab, runs: int) -> dict[str, Migrations]:
    """Each kind `runs` times each way, on a 1 GiB disk of random data, the counter guest running."""
    image = lab.tmp / "disk.raw"
    cli_migrate._random_image(image, cli_migrate.GiB)
    with image.open("r+b") as out:  # the counter's block blank, so its first write shows
        out.seek(counter.OFFSET)
        out.write(bytes(counter.BLOCK_SIZE))
    found = {}
    for kind, driver in ((migrate.SHARED, "shared"), (migrate.STORAGE, "local-a")):
        name = f"mig-{driver}"
        _create(lab, name, driver=driver, size=cli_migrate.GiB, image=image)
        vmrun.start(lab.env, vm_name=name, boot=vmrun.counter_guest())
        device = cli_migrate._device(lab.env, name)
        until(f"the counter of {name}", lambda d=device: counter.read_record(d))
        results = []
        for _ in range(runs):
            for to in ("node-b", "node-a"):
                results.append(migrate.migrate(lab.env, vm_name=name, to=to))
                r = results[-1]
                print(
                    f"  CLI {kind} -> {to}: downtime {r.downtime_ms} ms, {r.duration_ms / 1000:.2f} s",
                    flush=True,
                )
        vmrun.stop(lab.env, vm_name=name, grace_s=0)
        vms.delete(lab.env, name=name)
        found[kind] = Migrations(
            [r.downtime_ms for r in results], [r.duration_ms / 1000 for r in results]
        )
    image.unlink()
    return found


# --- the cluster side ---------------------------------------------------------


def _body(kind: str, name: str, spec_: Json) -> Json:
    return {
        "apiVersion": kinds.API_VERSION,
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec_,
    }


def _vm(storage_class: str, size: str, *, running_: bool) -> Json:
    disk = {"name": "root", "size": size, "storageClassName": storage_class}
    return {
        "running": running_,
        "cpus": 1,
        "memory": "128Mi",
        "nodeName": layout.NODE,
        "disks": [disk],
    }


def _phase(objs: objects.Objects, res: objects.Resource, name: str, namespace: str) -> Json:
    return dict(objs.get(res, name, namespace=namespace).get("status") or {})


def _running(objs: objects.Objects, vm: str, namespace: str) -> Callable[[], str | None]:
    def check() -> str | None:
        state = _phase(objs, kinds.VM, vm, namespace)
        if state.get("phase") == "Failed":
            raise BenchFailed(f"CsiVM {vm} failed: {state.get('message')}")
        if state.get("phase") != "Running":
            return None
        cond = next((c for c in state.get("conditions") or () if c.get("type") == "Running"), {})
        return str(cond.get("message", ""))

    return check


def _stop_and_delete(objs: objects.Objects, vm: str, namespace: str) -> None:
    objs.patch(kinds.VM, vm, {"spec": {"running": False}}, namespace=namespace)
    until(
        f"CsiVM {vm} Stopped",
        lambda: True if _phase(objs, kinds.VM, vm, namespace).get("phase") == "Stopped" else None,
    )
    objs.delete(kinds.VM, vm, namespace=namespace)


@dataclasses.dataclass(frozen=True)
class ClusterStart:
    running: list[float]  # CsiVM created until its status is Running
    counter: list[float]  # the same until the counter guest's first write, when it can boot
    where: str  # the last VM's Running condition
    why_no_counter: str = ""


def _boot_files() -> tuple[str, str, str] | None:
    """The names under which a launcher's run directory takes a kernel to boot, if it does."""
    names = tuple(getattr(launched, n, "") for n in ("BOOT_KERNEL", "BOOT_INITRD", "BOOT_CMDLINE"))
    return (names[0], names[1], names[2]) if all(names) else None


def _place_counter_guest(namespace: str, vm: str, names: tuple[str, str, str]) -> pathlib.Path:
    """The counter guest in the VM's launcher run directory on the first node; its console log."""
    boot = vmrun.counter_guest()
    first = vmpod.host_dir(namespace, vm)
    targets = [vmpod.target_run_dir(namespace, vm, node) for node in (layout.NODE, layout.NODE2)]
    for run_dir in (first, *targets):
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(boot.kernel, run_dir / names[0])
        shutil.copyfile(boot.initramfs, run_dir / names[1])
        (run_dir / names[2]).write_text(boot.cmdline)
    return first / vmpod.CONSOLE


def remove_run_dirs(namespace: str) -> None:
    """The launcher run directories of the namespace's VMs, which the bench filled."""
    for run_dir in vmpod.HOST_DIR.glob(f"{namespace}_*"):
        shutil.rmtree(run_dir, ignore_errors=True)


def _console_counted(console: pathlib.Path) -> bool | None:
    """True once the guest echoed an acknowledged write ("CSIVMCTR <n>") to its console."""
    try:
        text = console.read_text(errors="replace")
    except FileNotFoundError:
        return None
    return True if _COUNTED.search(text) else None


def _pod_steps(objs: objects.Objects, vm: str, namespace: str) -> str:
    """Where the time went, to the second: the launcher Pod's steps after the CsiVM's creation."""
    created = _stamp(objs.get(kinds.VM, vm, namespace=namespace)["metadata"]["creationTimestamp"])
    pod = objs.get(kinds.POD, vmpod.pod_name(vm), namespace=namespace)
    steps = [("Pod made", pod["metadata"]["creationTimestamp"])]
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") in ("PodScheduled", "Ready") and cond.get("status") == "True":
            steps.append((str(cond["type"]), cond["lastTransitionTime"]))
    return ", ".join(f"{what} +{_stamp(when) - created:.0f} s" for what, when in steps)


def _stamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def cluster_start(objs: objects.Objects, namespace: str, runs: int) -> ClusterStart:
    names = _boot_files()
    running_s, counted, where = [], [], ""
    for i in range(runs):
        name = f"start-{i}"
        console = _place_counter_guest(namespace, name, names) if names else None
        began = time.monotonic()
        body = _body("CsiVM", name, _vm(addons.FULL.storage_class, START_DISK, running_=True))
        objs.create(kinds.VM, body, namespace=namespace)
        where = until(f"CsiVM {name} Running", _running(objs, name, namespace))
        running_s.append(time.monotonic() - began)
        if console is not None:
            until(
                f"the counter of CsiVM {name} on its console", lambda c=console: _console_counted(c)
            )
            counted.append(time.monotonic() - began)
        print(f"  cluster start {i}: Running {running_s[-1]:.2f} s"
              + (f", counter guest writing {counted[-1]:.2f} s" if counted else "")
              + f"; {_pod_steps(objs, name, namespace)}", flush=True)  # fmt: skip
        _stop_and_delete(objs, name, namespace)
    why = (
        ""
        if names
        else (
            "launcher Pods boot the VM's first disk: this version takes no kernel to boot "
            "in their run directory"
        )
    )
    return ClusterStart(running_s, counted, where, why)


def cluster_migrations(
    kube: kubectl.Kube, objs: objects.Objects, namespace: str, runs: int
) -> dict[str, Migrations | str]:
    """Each kind `runs` times each way, or why it was not measured."""
    found: dict[str, Migrations | str] = {}
    for kind, storage_class in CLASSES.items():
        try:
            found[kind] = _cluster_migrations(kube, objs, namespace, kind, storage_class, runs)
        except NotMeasured as why:
            found[kind] = str(why)
            print(f"  cluster {kind}: not measured: {why}", flush=True)
    return found


def _cluster_migrations(
    kube: kubectl.Kube,
    objs: objects.Objects,
    namespace: str,
    kind: str,
    storage_class: str,
    runs: int,
) -> Migrations:
    if kube.maybe("storageclass", storage_class) is None:
        raise NotMeasured(f"the cluster has no StorageClass {storage_class}")
    vm = f"mig-{kind}"
    objs.create(
        kinds.VM, _body("CsiVM", vm, _vm(storage_class, "1Gi", running_=False)), namespace=namespace
    )
    _fill(kube, objs, namespace, vm)
    # The CLI's guest is the counter guest: the same here when the launcher
    # can boot it, with its kernel in every run directory the VM's launcher
    # Pods can have (a migration's target Pod has one of its own).
    names = _boot_files()
    console = _place_counter_guest(namespace, vm, names) if names else None
    objs.patch(kinds.VM, vm, {"spec": {"running": True}}, namespace=namespace)
    until(f"CsiVM {vm} Running", _running(objs, vm, namespace))
    if console is not None:
        until(f"the counter of CsiVM {vm}", lambda: _console_counted(console))
    downtimes, totals = [], []
    moves = [(f"{vm}-{i}-{to}", to) for i in range(runs) for to in (layout.NODE2, layout.NODE)]
    try:
        for name, to in moves:
            try:
                downtime, total = _one_migration(objs, namespace, vm, name=name, to=to, kind=kind)
            except NotMeasured as why:
                if not totals:
                    raise
                # What was measured stands; the rest is not.
                stopped = f"{name} to {to}: {why}"
                print(f"  cluster {kind}: stopped at {stopped}", flush=True)
                return Migrations(downtimes, totals, stopped)
            if downtime is not None:
                downtimes.append(downtime)
            totals.append(total)
            said = f"downtime {downtime} ms" if downtime is not None else "no downtime given"
            print(f"  cluster {kind} -> {to}: {said}, {total:.2f} s", flush=True)
    finally:
        # Stopped and gone whatever happened: the next kind runs alone.
        _stop_and_delete(objs, vm, namespace)
    return Migrations(downtimes, totals)


def _fill(kube: kubectl.Kube, objs: objects.Objects, namespace: str, vm: str) -> None:
    """1 GiB of random data on the VM's disk, written through a Pod on the first node."""
    claim = f"{vm}-root"
    until(f"claim {claim}", lambda: _maybe(objs, kinds.PVC, claim, namespace), timeout=120)
    # A node-local class makes the volume where its first Pod runs: on the
    # VM's node, not wherever the scheduler puts the Pod that fills it.
    selected = {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": layout.NODE}}}
    objs.patch(kinds.PVC, claim, selected, namespace=namespace)
    write = (
        f"dd if=/dev/urandom of={disks.DEVICE} bs=4M count=256 conv=fsync status=none && "
        # zeros where a boot sector would be: the firmware finds nothing to boot
        f"dd if=/dev/zero of={disks.DEVICE} bs=4096 count=1 conv=notrunc,fsync status=none"
    )
    disks.run_pod(kube, namespace, claim, ["sh", "-c", write])


def _maybe(objs: objects.Objects, res: objects.Resource, name: str, namespace: str) -> Json | None:
    try:
        return objs.get(res, name, namespace=namespace)
    except errors.NotFound:
        return None


def _one_migration(
    objs: objects.Objects, namespace: str, vm: str, *, name: str, to: str, kind: str
) -> tuple[int | None, float]:
    began = time.monotonic()
    objs.create(
        kinds.MIGRATION,
        _body("CsiVMMigration", name, {"vmName": vm, "targetNode": to}),
        namespace=namespace,
    )

    def ended() -> Json | None:
        state = _phase(objs, kinds.MIGRATION, name, namespace)
        return state if state.get("phase") in ("Succeeded", "Failed", "Rejected") else None

    try:
        state = until(f"CsiVMMigration {name}", ended, timeout=600)
    except BenchFailed:
        state = _phase(objs, kinds.MIGRATION, name, namespace)
        raise NotMeasured(
            f"{state.get('phase') or 'no phase'} after 600 s: {state.get('message', '')}"
        ) from None
    total = time.monotonic() - began
    if state["phase"] != "Succeeded":
        raise NotMeasured(f"{state['phase']}: {state.get('message', '')}")
    if state.get("strategy") != kind:
        raise NotMeasured(
            f"Succeeded by {state.get('strategy')}, not {kind}: {state.get('message', '')}"
        )
    # qemu's downtime, as the agent words it in the status; None when it does not
    downtime = _DOWNTIME.search(str(state.get("message", "")))
    return (int(downtime.group(1)) if downtime else None), total


# --- the reports --------------------------------------------------------------


def report_start(cluster: ClusterStart, cli: CliStart) -> None:
    print()
    print(f"VM start, {len(cluster.running)} runs, median; baseline: {START_BASELINE}")
    print(f"  where the cluster's ran: {cluster.where}")
    if cluster.counter:
        on, by = statistics.median(cluster.counter), statistics.median(cli.counter)
        print(
            f"  to the counter guest's first write: cluster (from creating the CsiVM) {on:.2f} s, "
            f"CLI (from vm start) {by:.2f} s, ratio {on / by:.2f}"
        )
    else:
        print(
            f"  to the counter guest's first write: CLI {statistics.median(cli.counter):.2f} s; "
            f"cluster not measured: {cluster.why_no_counter}"
        )
    on, by = statistics.median(cluster.running), statistics.median(cli.disk_boot)
    print(
        f"  to qemu running: cluster (CsiVM Running) {on:.2f} s, "
        f"CLI (vm start of a guest booting its blank disk returned) {by:.2f} s, "
        f"ratio {on / by:.2f}"
    )


def report_migrations(cluster: dict[str, Migrations | str], cli: dict[str, Migrations]) -> None:
    print()
    print(
        f"live migration of a running VM, 1 GiB disk of random data; baseline: {MIGRATE_BASELINE}"
    )
    for kind in (migrate.SHARED, migrate.STORAGE):
        by = cli[kind]
        print(
            f"  {kind}: CLI downtime median {statistics.median(by.downtime_ms):.0f} ms, "
            f"max {max(by.downtime_ms)} ms, total median {statistics.median(by.total_s):.2f} s "
            f"({len(by.total_s)} migrations)"
        )
        on = cluster[kind]
        if isinstance(on, str):
            print(f"  {kind}: cluster not measured: {on}")
            continue
        ratio = statistics.median(on.total_s) / statistics.median(by.total_s)
        downtime = (
            f"downtime median {statistics.median(on.downtime_ms):.0f} ms, "
            f"max {max(on.downtime_ms)} ms"
            if on.downtime_ms
            else "downtime not measured: the migration's status does not give it"
        )
        print(
            f"  {kind}: cluster {downtime}, total median {statistics.median(on.total_s):.2f} s "
            f"({len(on.total_s)} migrations); total cluster / CLI {ratio:.2f}"
        )
        if on.stopped:
            print(f"  {kind}: cluster migrations after those not measured: {on.stopped}")
    print("  target: downtime median <= 300 ms under TCG")
    print("  guests: the counter guest on both sides (on the cluster when launchers boot a kernel")
    print("  from their run directory; else one that boots its disk)")


def namespace_name() -> str:
    return f"bench-{uuid.uuid4().hex[:6]}"
