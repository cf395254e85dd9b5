"""Time VM disk operations and running VMs on the real cluster against the same by the CLI.

On a VM of one 1 GiB disk holding 256 MiB of data (four 64 MiB extents of
random bytes, at 0, 256, 512 and 768 MiB), prints for each operation and path:
  - snapshot: from creating a CsiVMSnapshot until its phase is Ready;
  - clone: from creating a CsiVMClone until its phase is Ready;
  - expand: from patching the CsiVM's disk to 2Gi until the disk's claim
    shows 2Gi in status.capacity and the VM's status has the resize done;
on the test cluster of scripts/cluster (its first node), natively on the local
driver's full configuration (StorageClass csi-vm-full: the CSI sidecars do
the work) and by host copy on its lite one (csi-vm-lite: copy Jobs), each as
a ratio against the baseline "CLI" run in this process: the same operation
by `csi-vm snapshot create`, `csi-vm clone` and `csi-vm disk expand` against
the local driver started in the same two configurations on unix sockets.
A CLI time includes the command's start-up, printed on its own as well.

First the chart is installed (upgraded) with the test values, and the full
class's StorageCapabilityReport verified (spec.verify): only a verified
report plans a CSI clone. The cluster part works in a namespace of its own,
deleted at the end; the CLI part in a temporary directory under --dir,
removed with its drivers and their loop devices. One operation runs at a
time. No assertion is made on time.

With --part start or migrate (both are in the default, all), running VMs
in launcher Pods instead, beside the CLI: see bench/cluster_vms.py.

Needs root and the cluster up (scripts/cluster up).
Usage: .venv/bin/python bench/cluster.py [--part disks|start|migrate|all] [--runs 3] [--dir DIR]
"""

from __future__ import annotations

import pathlib
import sys

# Run as a script, Python puts bench/ first on the path, where copy.py would
# shadow the standard library's copy module (dataclasses imports it): put the
# repository there instead, before anything else is imported.
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[1])

import argparse
import dataclasses
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import yaml

from bench import cluster_vms
from csi_vm import errors
from csi_vm.crd import kinds
from csi_vm.kube import api as kube_api
from csi_vm.kube import objects
from tests.integration.cluster import conftest, disks
from tests.support import driverproc, helmbin
from tests.support.cluster import addons, kubectl, lab, layout

MiB = 1 << 20
SIZE, GROWN = "1Gi", "2Gi"
EXTENT_MIB = 64
SLOTS_MIB = (0, 256, 512, 768)  # where the extents start: 256 MiB of data in all
OPERATIONS = ("snapshot", "clone", "expand")
PATHS = {addons.FULL.key: "native", addons.LITE.key: "host-copy"}
# Seconds between two reads of an object being timed: one GET through the
# project's Kubernetes adapter costs a few ms, where a kubectl process would
# cost a tenth of a second of one of the two cores and pad every figure.
POLL = 0.2
TIMEOUT = 900  # a host copy on a loaded 2-core machine, plus scheduling
QUIET = ("--log-level", "WARNING")  # the drivers log as a user runs them

T = TypeVar("T")
Json = dict[str, Any]


class BenchFailed(RuntimeError):
    """An operation failed or never finished: the message says which."""


@dataclasses.dataclass(frozen=True)
class Measure:
    seconds: float
    strategy: str


Measures = dict[tuple[str, str], Measure]  # (operation, driver configuration) -> measure


@dataclasses.dataclass(frozen=True)
class ClusterRun:
    measures: Measures
    setup: str  # what the figures ran against
    warnings: list[str]


def _until(what: str, check: Callable[[], T | None], *, timeout: float = TIMEOUT) -> T:
    """Poll ``check`` every POLL seconds until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise BenchFailed(f"{what}: not within {timeout:.0f} s")
        time.sleep(POLL)


# --- the cluster must be up -------------------------------------------------


def _cluster_or_exit() -> layout.Layout:
    if os.geteuid() != 0:
        raise SystemExit("bench/cluster.py: run it as root (the CLI part uses loop devices)")
    where = layout.default()
    why = _not_up(where)
    if why:
        raise SystemExit(
            f"bench/cluster.py: the test cluster is not up ({why}); "
            "start it with scripts/cluster up"
        )
    return where


def _not_up(where: layout.Layout) -> str:
    """Why the cluster cannot take the benchmark, or "" when it can."""
    if not (lab.kube_bin() / "kubectl").is_file() or not where.admin_kubeconfig.is_file():
        return "it was never started on this machine"
    if not (where.state / "project-image-tag").is_file():
        return "no csi-vm image was imported"
    try:
        if lab.kubectl(where, "get", "--raw=/readyz", check=False, timeout=10).returncode:
            return "its API server does not answer"
        ready = "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
        if (
            lab.kubectl(where, "get", "node", layout.NODE, "-o", ready, check=False).stdout.strip()
            != "True"
        ):
            return f"node {layout.NODE} is not Ready"
        names = "jsonpath={.spec.drivers[*].name}"
        found = lab.kubectl(where, "get", "csinode", layout.NODE, "-o", names, check=False)
    except subprocess.TimeoutExpired:
        return "its API server does not answer"
    missing = {c.driver for c in addons.DRIVERS} - set(found.stdout.split())
    return f"driver {', '.join(sorted(missing))} not registered" if missing else ""


# --- the baseline: the CLI against the local driver -------------------------


@dataclasses.dataclass(frozen=True)
class Cli:
    env: dict[str, str]

    def run(self, *args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "csi_vm", *args, "-o", "json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            raise BenchFailed(
                f"csi-vm {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        return json.loads(done.stdout)

    def timed(self, *args: str) -> Measure:
        started = time.monotonic()
        plan = self.run(*args)
        return Measure(time.monotonic() - started, str(plan["disks"][0]["strategy"]))


def _data_image(path: pathlib.Path) -> None:
    """A sparse 1 GiB raw image with the benchmark's extents of random data."""
    with path.open("wb") as out:
        out.truncate(1024 * MiB)
        for slot in SLOTS_MIB:
            out.seek(slot * MiB)
            out.write(os.urandom(EXTENT_MIB * MiB))


def cli_part(base: pathlib.Path) -> tuple[Measures, float]:
    """The CLI's measures, and its start-up: `csi-vm vm list` on an empty store."""
    image = base / "data.raw"
    _data_image(image)
    drivers: dict[str, driverproc.DriverProcess] = {}
    try:
        for config in addons.DRIVERS:
            drivers[config.key] = driverproc.start_driver(
                base / config.key, without=config.without, extra_args=QUIET
            )
        cfg = {
            "node": "node-a",
            "drivers": {k: {"endpoint": d.endpoint} for k, d in drivers.items()},
        }
        (base / "config.yaml").write_text(yaml.safe_dump(cfg))
        cli = Cli(
            {
                **os.environ,
                "CSI_VM_CONFIG": str(base / "config.yaml"),
                "CSI_VM_DB": str(base / "csi-vm.db"),
                "CSI_VM_STATE_DIR": str(base / "state"),
            }
        )
        start_up = _start_up(cli)
        found: Measures = {}
        for config in addons.DRIVERS:
            found.update(_cli_operations(cli, base, image, key=config.key))
        return found, start_up
    finally:
        for drv in drivers.values():
            drv.stop()


def _start_up(cli: Cli) -> float:
    started = time.monotonic()
    cli.run("vm", "list")
    return time.monotonic() - started


def _cli_operations(cli: Cli, base: pathlib.Path, image: pathlib.Path, *, key: str) -> Measures:
    vm = f"bench-{key}"
    disk = {
        "name": "root",
        "size": "1GiB",
        "driver": key,
        "mode": "block",
        "source": {"image": str(image)},
    }
    spec_file = base / f"{vm}.yaml"
    spec_file.write_text(yaml.safe_dump({"name": vm, "memory_mib": 128, "disks": [disk]}))
    cli.run("vm", "create", "-f", str(spec_file))  # probes the driver first: not timed
    found = {
        ("snapshot", key): cli.timed("snapshot", "create", vm, "--name", f"{vm}-snap"),
        ("clone", key): cli.timed("clone", vm, f"{vm}-copy"),
        ("expand", key): cli.timed("disk", "expand", vm, "root", "2GiB"),
    }
    for (operation, _), measure in found.items():
        print(
            f"  CLI {key:4} {operation:8} {measure.seconds:7.2f} s  {measure.strategy}", flush=True
        )
    return found


# --- the cluster ------------------------------------------------------------


def _verify_full(kube: kubectl.Kube) -> str:
    """Verify csi-vm-full's report (spec.verify) and return the strategy it plans for a clone."""
    name = addons.FULL.storage_class
    kube.run(
        "patch", "storagecapabilityreport", name, "--type=merge", "-p", '{"spec":{"verify":true}}'
    )

    def done() -> Json | None:
        status = kube.get("storagecapabilityreport", name).get("status") or {}
        phase = (status.get("verification") or {}).get("phase")
        return status if phase == "Done" and status.get("basis") == "verified" else None

    print(f"verifying {name} in the cluster ...", flush=True)
    status = kube.wait_for(f"verification of {name}", done, timeout=TIMEOUT)
    return str(status["plan"]["vm_clone"]["strategy"])


def cluster_part(where: layout.Layout, kube: kubectl.Kube) -> ClusterRun:
    print("installing the chart with the test values ...", flush=True)
    conftest.install_chart(kube)
    clones_by = _verify_full(kube)
    revision, image = _release(kube)
    warnings = []
    if clones_by != "csi-clone":
        warnings.append(
            f"warning: the verified report of {addons.FULL.storage_class} plans "
            f"{clones_by} for a clone: its native clone row is no CSI clone"
        )
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", namespace)
    api = kube_api.connect(kubeconfig_file=where.admin_kubeconfig)
    try:
        found: Measures = {}
        for config in addons.DRIVERS:
            found.update(_cluster_operations(kube, objects.Objects(api), namespace, config))
    finally:
        api.close()
        _delete_namespace(kube, namespace)
    if _release(kube)[0] != revision:
        # Others share the cluster: their installs restart the controller.
        warnings.append(
            "warning: the chart release was upgraded during the run: "
            "a controller restart may be inside the figures"
        )
    setup = f"cluster: chart revision {revision} with the test values, controller {image}"
    return ClusterRun(found, setup, warnings)


def _release(kube: kubectl.Kube) -> tuple[int, str]:
    """The chart release's revision and the controller's image."""
    ns = conftest.RELEASE_NAMESPACE
    status = json.loads(kube.helm("status", conftest.RELEASE, "-n", ns, "-o", "json").stdout)
    deployment = kube.get("deployment", f"{conftest.RELEASE}-controller", namespace=ns)
    return int(status["version"]), str(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    )


def _delete_namespace(kube: kubectl.Kube, namespace: str) -> None:
    print(f"deleting namespace {namespace} ...", flush=True)
    kube.run(
        "delete", "namespace", namespace, "--wait=true", "--timeout=600s", timeout=660, check=False
    )
    if kube.maybe("namespace", namespace):
        print(f"  namespace {namespace} is still there: delete it by hand", flush=True)


def _body(kind: str, name: str, spec: Json) -> Json:
    return {"apiVersion": kinds.API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def _vm_spec(storage_class: str) -> Json:
    disk = {"name": "root", "size": SIZE, "storageClassName": storage_class}
    return {"running": False, "cpus": 1, "memory": "128Mi", "disks": [disk]}


def _fill(kube: kubectl.Kube, objs: objects.Objects, namespace: str, vm: str) -> None:
    """Write the benchmark's extents onto the VM's disk through a Pod, and let the VM see it."""
    claim = f"{vm}-root"
    _until(f"claim {claim}", lambda: _maybe(objs, kinds.PVC, claim, namespace), timeout=120)
    write = " && ".join(
        f"dd if=/dev/urandom of={disks.DEVICE} bs=1M count={EXTENT_MIB} seek={slot} "
        "conv=notrunc,fsync status=none"
        for slot in SLOTS_MIB
    )
    disks.run_pod(kube, namespace, claim, ["sh", "-c", write])

    def bound() -> bool | None:
        status = objs.get(kinds.VM, vm, namespace=namespace).get("status") or {}
        return True if (status.get("disks") or [{}])[0].get("phase") == "Bound" else None

    _until(f"CsiVM {vm} with its claim Bound", bound, timeout=120)


def _maybe(objs: objects.Objects, res: objects.Resource, name: str, namespace: str) -> Json | None:
    try:
        return objs.get(res, name, namespace=namespace)
    except errors.NotFound:
        return None


def _timed(what: str, start: Callable[[], object], done: Callable[[], str | None]) -> Measure:
    started = time.monotonic()
    start()
    strategy = _until(what, done)
    return Measure(time.monotonic() - started, strategy)


def _ready(
    objs: objects.Objects, res: objects.Resource, name: str, namespace: str
) -> Callable[[], str | None]:
    """A check: the strategy of the object once its phase is Ready."""

    def check() -> str | None:
        status = objs.get(res, name, namespace=namespace).get("status") or {}
        if status.get("phase") == "Failed":
            raise BenchFailed(f"{res.plural} {name} failed: {status}")
        return str(status.get("strategy")) if status.get("phase") == "Ready" else None

    return check


def _grown(objs: objects.Objects, vm: str, namespace: str) -> Callable[[], str | None]:
    """A check: the strategy of the resize once its claim holds GROWN and the VM says done."""
    seen: set[str] = set()

    def check() -> str | None:
        obj = objs.get(kinds.VM, vm, namespace=namespace)
        status = obj.get("status") or {}
        # The resizer may grow the claim before the controller writes the VM's
        # status: a status older than the patch says nothing about the resize.
        if status.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        resize = (status.get("disks") or [{}])[0].get("resize") or {}
        if resize.get("phase") == "Failed":
            raise BenchFailed(f"expansion of {vm} failed: {resize}")
        if resize.get("strategy"):
            seen.add(str(resize["strategy"]))
        # A finished resize is Done, or gone once the claim is as large as asked.
        if resize.get("phase") not in (None, "Done"):
            return None
        claim = obj["spec"]["disks"][0].get("claimName") or f"{vm}-root"
        pvc = objs.get(kinds.PVC, claim, namespace=namespace)
        if ((pvc.get("status") or {}).get("capacity") or {}).get("storage") != GROWN:
            return None
        if seen:
            return " ".join(sorted(seen))
        # Its phases went by between two reads (a resize through the sidecars
        # can take a fraction of a second). A claim grown in place was grown by
        # the CSI resizer; a copy's new claim says how it was made.
        if claim == f"{vm}-root":
            return "csi-expand"
        made = (pvc["metadata"].get("annotations") or {}).get("csi-vm.io/strategy", "")
        return made.removeprefix("disk_expand/") or "unrecorded"

    return check


def _cluster_operations(
    kube: kubectl.Kube, objs: objects.Objects, namespace: str, config: addons.DriverConfiguration
) -> Measures:
    vm = f"bench-{config.key}"
    objs.create(kinds.VM, _body("CsiVM", vm, _vm_spec(config.storage_class)), namespace=namespace)
    _fill(kube, objs, namespace, vm)
    snap = _body("CsiVMSnapshot", f"{vm}-snap", {"vmName": vm})
    clone = _body("CsiVMClone", f"{vm}-clone", {"sourceVMName": vm, "targetVMName": f"{vm}-copy"})
    # A merge patch replaces the whole list: every disk, the one to grow at its new size.
    disks_now = objs.get(kinds.VM, vm, namespace=namespace)["spec"]["disks"]
    grow = {"spec": {"disks": [{**disks_now[0], "size": GROWN}, *disks_now[1:]]}}
    found = {
        ("snapshot", config.key): _timed(
            f"snapshot of {vm}",
            lambda: objs.create(kinds.SNAPSHOT, snap, namespace=namespace),
            _ready(objs, kinds.SNAPSHOT, f"{vm}-snap", namespace),
        ),
        ("clone", config.key): _timed(
            f"clone of {vm}",
            lambda: objs.create(kinds.CLONE, clone, namespace=namespace),
            _ready(objs, kinds.CLONE, f"{vm}-clone", namespace),
        ),
        ("expand", config.key): _timed(
            f"expansion of {vm}",
            lambda: objs.patch(kinds.VM, vm, grow, namespace=namespace),
            _grown(objs, vm, namespace),
        ),
    }
    for (operation, _), measure in found.items():
        print(
            f"  cluster {config.key:4} {operation:8} {measure.seconds:7.2f} s  {measure.strategy}",
            flush=True,
        )
    return found


# --- the report -------------------------------------------------------------


def report(cluster: ClusterRun, cli: Measures, *, start_up: float, loads: list[float]) -> None:
    values = yaml.safe_load((kubectl.chart_dir() / conftest.VALUES).read_text())
    print()
    print(
        f"1 GiB disk, 256 MiB of data; {os.cpu_count()} CPUs; load average (1 min) "
        f"before the CLI part {loads[0]:.2f}, before the cluster part {loads[1]:.2f}"
    )
    print(cluster.setup + f", resync every {values['controller']['resyncSeconds']} s")
    print(
        f"baseline CLI: csi-vm against the local driver in this process; "
        f"its start-up alone (vm list) {start_up:.2f} s"
    )
    print(
        f"{'operation':<10}{'path':<11}{'cluster s':>10}{'CLI s':>8}{'cluster/CLI':>13}"
        "   strategy: cluster / CLI"
    )
    for operation in OPERATIONS:
        for config in addons.DRIVERS:
            on, by = cluster.measures[operation, config.key], cli[operation, config.key]
            print(
                f"{operation:<10}{PATHS[config.key]:<11}{on.seconds:>10.2f}{by.seconds:>8.2f}"
                f"{on.seconds / by.seconds:>13.2f}   {on.strategy} / {by.strategy}"
            )
    print(
        f"note: {addons.FULL.storage_class} binds on first use (WaitForFirstConsumer): a native "
        "clone is Ready once its claim waits for the VM, and the driver makes the volume "
        "when the VM first uses it; a host copy's Job is that first use."
    )
    for line in cluster.warnings:
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir",
        type=pathlib.Path,
        default=pathlib.Path("/var/tmp"),
        help="where the CLI part's drivers keep their volumes",
    )
    parser.add_argument(
        "--part",
        choices=("disks", "start", "migrate", "all"),
        default="all",
        help="disks: snapshot, clone, expand; start and migrate: running VMs (bench/cluster_vms.py)",
    )
    parser.add_argument("--runs", type=int, default=3, help="VM starts, and migrations each way")
    args = parser.parse_args()
    where = _cluster_or_exit()
    try:
        if args.part in ("disks", "all"):
            _disks_part(where, args.dir)
        if args.part in ("start", "migrate", "all"):
            _vms_part(where, args.dir, runs=args.runs, parts=args.part)
    except (
        BenchFailed,
        cluster_vms.BenchFailed,
        errors.CsiVmError,
        lab.ClusterError,
        helmbin.HelmUnavailable,
        AssertionError,
        subprocess.TimeoutExpired,
    ) as err:
        # AssertionError: what the cluster test helpers raise (kubectl.CommandFailed too).
        raise SystemExit(f"bench/cluster.py failed: {err}") from None


def _disks_part(where: layout.Layout, base: pathlib.Path) -> None:
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="csi-vm-bench-cluster-", dir=base) as tmp:
        print("CLI against the local driver ...", flush=True)
        cli, start_up = cli_part(pathlib.Path(tmp))
    loads.append(os.getloadavg()[0])
    cluster = cluster_part(where, kubectl.Kube(where))
    report(cluster, cli, start_up=start_up, loads=loads)


def _vms_part(where: layout.Layout, base: pathlib.Path, *, runs: int, parts: str) -> None:
    """VM start and migration, the CLI's first (its own libvirt nodes), then the cluster's."""
    start, moves = parts in ("start", "all"), parts in ("migrate", "all")
    with (
        tempfile.TemporaryDirectory(prefix="csi-vm-bench-vms-", dir=base) as tmp,
        cluster_vms.cli_lab(pathlib.Path(tmp)) as cli_lab,
    ):
        print(
            f"CLI: VMs on the local drivers (load average {os.getloadavg()[0]:.2f}) ...", flush=True
        )
        cli_start = cluster_vms.cli_start(cli_lab, runs) if start else None
        cli_moves = cluster_vms.cli_migrations(cli_lab, runs) if moves else None
    kube = kubectl.Kube(where)
    print("installing the chart with the test values ...", flush=True)
    conftest.install_chart(kube)
    print(f"cluster: VMs in launcher Pods (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
    namespace = cluster_vms.namespace_name()
    kube.run("create", "namespace", namespace)
    api = kube_api.connect(kubeconfig_file=where.admin_kubeconfig)
    try:
        objs = objects.Objects(api)
        if cli_start is not None:
            cluster_vms.report_start(cluster_vms.cluster_start(objs, namespace, runs), cli_start)
        if cli_moves is not None:
            found = cluster_vms.cluster_migrations(kube, objs, namespace, runs)
            cluster_vms.report_migrations(found, cli_moves)
    finally:
        api.close()
        _delete_namespace(kube, namespace)
        cluster_vms.remove_run_dirs(namespace)


if __name__ == "__main__":
    main()
