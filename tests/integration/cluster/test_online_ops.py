"""Online operations on a VM that runs in its launcher Pod, on the real cluster.

One guest boot for the native operations: the counter guest with qemu-guest-agent
(`launcher.agentguest`), booted from a kernel put into its launcher's run
directory, counting in a file of the ext4 its claim holds. A value it echoes
on its console was written with fsync first: the disk must never hold less.

A second guest, on the class without CSI snapshots or expansion (lite),
takes the fallbacks: a push backup for its snapshot, and a block copy into a
larger claim with a pivot for its expansion.

Each operation is followed by the same checks: the guest is the same qemu in
its one launcher Pod, it still counts (so it is not left frozen), no
acknowledged write was lost, and nothing is left behind once the operation's
resource is deleted.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from csi_vm.crd import onlinesnap, vmpod
from csi_vm.flows import vmrun
from launcher import counter, fscounter
from tests.integration.cluster import conftest, disks
from tests.support.cluster import addons, kubectl, layout

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"
VM = "ctr"
POD = vmpod.pod_name(VM)
CLAIM = f"{VM}-root"
DEVICE = vmpod.device("root")
_ACKED = re.compile(rb"^CSIVMCTR (\d+)\r?$", re.MULTILINE)


class Guest:
    """The running counter guest: what it acknowledged, and what its disk holds."""

    def __init__(self, kube: kubectl.Kube, namespace: str, *, offset: int) -> None:
        self.kube, self.namespace, self.offset = kube, namespace, offset
        self.console = vmpod.host_dir(namespace, VM) / vmpod.CONSOLE
        self.qemu = ""
        #: where the launcher's container has the guest's disk: after a pivot, the new one
        self.device = str(DEVICE)

    def acked(self) -> int:
        """The last value the guest echoed: written and fsynced before."""
        found = _ACKED.findall(self.console.read_bytes()) if self.console.exists() else []
        return int(found[-1]) if found else 0

    def on_disk(self) -> counter.Record:
        """The counter file's block, read from the claim's device in the launcher Pod."""
        out = self.kube.run(
            "-n", self.namespace, "exec", POD, "--", "dd", f"if={self.device}",
            f"bs={counter.BLOCK_SIZE}", f"skip={self.offset // counter.BLOCK_SIZE}",
            "count=1", "iflag=direct", "status=none",
        ).stdout  # fmt: skip
        record = counter.parse(out.encode(), source=f"{CLAIM}:/{fscounter.FILE}")
        assert record is not None, "the counter file's block is all zeros"
        return record

    def pid(self) -> str:
        dom = vmpod.domain_name(self.namespace, VM)
        pid = self.kube.run(
            "-n", self.namespace, "exec", POD, "--", "cat", f"{vmpod.RUN_DIR}/qemu/{dom}.pid"
        ).stdout.strip()  # fmt: skip
        assert pid.isdigit(), pid
        return pid

    def counts_past(self, value: int) -> int:
        """Wait until the guest acknowledged a value beyond ``value``: it runs, unfrozen."""
        return int(
            self.kube.wait_for(
                f"the guest counting past {value}",
                lambda: (n := self.acked()) > value and n,
                timeout=120,
                explain=lambda: self.console.read_text(errors="replace")[-2000:],
            )
        )

    def check(self, *, holders: tuple[str, ...] = ()) -> None:
        """One qemu in one Pod, the same as at boot, counting, no acknowledged write lost.

        ``holders``: the holder Pods that publish a claim the guest was pivoted onto.
        """
        pods = [p["metadata"]["name"] for p in self.kube.items("pods", namespace=self.namespace)]
        assert pods == sorted([POD, *holders]), pods
        assert self.pid() == self.qemu
        acked = self.acked()
        self.counts_past(acked)
        # the disk is written before the console: it never holds less than was echoed
        assert self.on_disk().value >= acked


def _namespace(kube: kubectl.Kube) -> Iterator[str]:
    name = f"e2e-online-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", name)
    try:
        yield name
    finally:
        kube.run("delete", "namespace", name, "--wait=true", "--timeout=300s", check=False)


@pytest.fixture(scope="module")
def online_ns(chart: kubectl.Kube) -> Iterator[str]:
    yield from _namespace(chart)


def _vm(running: bool, storage_class: str = addons.FULL.storage_class) -> Json:
    return {
        "apiVersion": API,
        "kind": "CsiVM",
        "metadata": {"name": VM},
        "spec": {
            "running": running,
            "cpus": 1,
            "memory": "128Mi",
            "nodeName": layout.NODE,
            "disks": [
                {"name": "root", "size": disks.DISK, "claimName": CLAIM,
                 "storageClassName": storage_class}
            ],
        },
    }  # fmt: skip


def _explain(kube: kubectl.Kube, namespace: str) -> str:
    return (
        kube.describe("-n", namespace, "csivm,csivmsnapshot")
        + kube.run("-n", namespace, "get", "pvc,pods,volumesnapshots,jobs", "-o", "wide",
                   check=False).stdout
        + kube.logs("-n", conftest.RELEASE_NAMESPACE, "-l",
                    "app.kubernetes.io/component=node", "-c", "launcher", "--tail=40")
    )  # fmt: skip


def _boot_files(run_dir: pathlib.Path) -> None:
    """The agent guest's kernel where the launcher's qemu finds it (`agent.launched`)."""
    from csi_vm.agent import launched  # noqa: PLC0415 - its names only

    built = vmrun.counter_guest(agent=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built.kernel, run_dir / launched.BOOT_KERNEL)
    shutil.copyfile(built.initramfs, run_dir / launched.BOOT_INITRD)
    (run_dir / launched.BOOT_CMDLINE).write_text(built.cmdline)


@pytest.fixture(scope="module")
def guest(
    chart: kubectl.Kube, online_ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Guest]:
    seed = tmp_path_factory.mktemp("online-seed")
    yield from _booted(chart, online_ns, addons.FULL.storage_class, seed=seed)


@contextlib.contextmanager
def _guest_on(
    kube: kubectl.Kube, namespace: str, storage_class: str, *, seed: pathlib.Path
) -> Iterator[Guest]:
    yield from _booted(kube, namespace, storage_class, seed=seed)


def _booted(
    kube: kubectl.Kube, namespace: str, storage_class: str, *, seed: pathlib.Path
) -> Iterator[Guest]:
    """The counter guest running in its launcher Pod, on a claim of ``storage_class``."""
    seed.chmod(0o755)
    image = seed / "root.img"
    fscounter.make_image(image, size=disks.DISK_MIB * disks.MiB)
    offset = fscounter.record_offset(image)
    kube.apply(disks.block_claim(CLAIM, storage_class), namespace=namespace)
    disks.seed(kube, namespace, CLAIM, image, node=layout.NODE)
    run_dir = vmpod.host_dir(namespace, VM)
    _boot_files(run_dir)
    try:
        kube.apply(_vm(running=True, storage_class=storage_class), namespace=namespace)
        kube.wait_for(
            f"CsiVM {VM} Running",
            lambda: (
                (kube.get("csivm", VM, namespace=namespace).get("status") or {}).get("phase")
                == "Running"
            ),
            timeout=420,
            explain=lambda: _explain(kube, namespace),
        )
        found = Guest(kube, namespace, offset=offset)
        found.counts_past(3)  # booted, its filesystem mounted, qemu-ga started before
        found.qemu = found.pid()
        yield found
        _stop(kube, namespace)
    finally:
        kube.run("-n", namespace, "delete", "csivm", VM, "--wait=true", check=False)
        shutil.rmtree(run_dir, ignore_errors=True)


def _stop(kube: kubectl.Kube, namespace: str) -> None:
    kube.run("-n", namespace, "patch", "csivm", VM, "--type=merge",
             "-p", '{"spec": {"running": false}}')  # fmt: skip
    kube.wait_for(
        f"launcher Pod {POD} gone",
        lambda: kube.maybe("pod", POD, namespace=namespace) is None,
        timeout=300,
    )


def _leftovers(kube: kubectl.Kube, namespace: str) -> dict[str, list[str]]:
    """What the namespace holds beyond the VM's claim and launcher Pod."""
    names = {
        kind: sorted(o["metadata"]["name"] for o in kube.items(kind, namespace=namespace))
        for kind in ("pvc", "pods", "volumesnapshots", "jobs")
    }
    vm = kube.maybe("csivm", VM, namespace=namespace) or {"spec": {"disks": []}}
    held = {CLAIM, *(d.get("claimName") for d in vm["spec"]["disks"])}
    names["pvc"] = [n for n in names["pvc"] if n not in held]
    names["pods"] = [n for n in names["pods"] if n != POD]
    return {kind: found for kind, found in names.items() if found}


def _snapshot(kube: kubectl.Kube, namespace: str, name: str) -> Json:
    body = {
        "apiVersion": API,
        "kind": "CsiVMSnapshot",
        "metadata": {"name": name},
        "spec": {"vmName": VM},
    }
    kube.apply(body, namespace=namespace)

    def done() -> Json | None:
        snap = kube.get("csivmsnapshot", name, namespace=namespace)
        phase = (snap.get("status") or {}).get("phase")
        assert phase != "Failed", snap.get("status")
        return snap if phase == "Ready" else None

    return dict(
        kube.wait_for(
            f"CsiVMSnapshot {name} Ready",
            done,
            timeout=300,
            explain=lambda: _explain(kube, namespace),
        )
    )


def test_online_snapshot_freezes_the_guest_around_its_csi_snapshot(
    chart: kubectl.Kube, online_ns: str, guest: Guest
) -> None:
    kube, namespace = chart, online_ns
    snap = _snapshot(kube, namespace, "live")
    status = snap["status"]
    assert status["strategy"] == "csi-snapshot", status
    online = status[onlinesnap.FIELD]
    # The agent froze the guest's filesystems through its guest agent, the
    # controller snapshotted inside the freeze, and the agent thawed after the cut.
    assert online["phase"] == onlinesnap.THAWED, online
    assert online["nodeName"] == layout.NODE, online
    assert online["consistency"] == onlinesnap.CONSISTENT, online
    assert re.search(r"[1-9]\d* filesystem\(s\) frozen", online["reason"]), online
    volume_snapshot = kube.get("volumesnapshot", "live-root", namespace=namespace)
    assert volume_snapshot["status"]["readyToUse"] is True
    guest.check()

    kube.run("-n", namespace, "delete", "csivmsnapshot", "live", "--wait=true")
    kube.wait_for(
        "the snapshot's VolumeSnapshot gone",
        lambda: not _leftovers(kube, namespace),
        timeout=120,
        explain=lambda: str(_leftovers(kube, namespace)),
    )


def _grow(kube: kubectl.Kube, namespace: str, storage_class: str) -> None:
    vm = _vm(running=True, storage_class=storage_class)
    vm["spec"]["disks"][0]["size"] = disks.GROWN
    kube.apply(vm, namespace=namespace)


def test_online_expansion_grows_the_claim_and_the_guest_sees_it(
    chart: kubectl.Kube, online_ns: str, guest: Guest
) -> None:
    kube, namespace = chart, online_ns
    grown = disks.GROWN_MIB * disks.MiB
    assert guest.on_disk().disk_sectors * 512 == disks.DISK_MIB * disks.MiB
    _grow(kube, namespace, addons.FULL.storage_class)
    # The guest writes the size it sees into every record.
    kube.wait_for(
        f"the guest seeing {disks.GROWN}",
        lambda: guest.on_disk().disk_sectors * 512 == grown,
        timeout=240,
        explain=lambda: _explain(kube, namespace),
    )
    claim = kube.get("pvc", CLAIM, namespace=namespace)
    assert claim["status"]["capacity"]["storage"] == disks.GROWN
    vm = kube.get("csivm", VM, namespace=namespace)
    resized = next(c for c in vm["status"]["conditions"] if c["type"] == "DiskSize")
    assert resized["reason"] == "GuestResized", resized
    assert f"grown under the running guest to {disks.GROWN}" in resized["message"], resized
    assert "CSI expansion" in resized["message"], resized
    guest.check()
    assert not _leftovers(kube, namespace)


def test_without_csi_snapshots_or_expansion_a_push_backup_and_a_block_copy(
    chart: kubectl.Kube, namespace: str, tmp_path: pathlib.Path
) -> None:
    kube = chart
    with _guest_on(kube, namespace, addons.LITE.storage_class, seed=tmp_path) as lite:
        snap = _snapshot(kube, namespace, "pushed")
        status = snap["status"]
        # The class cannot snapshot: libvirt backed the running guest up into a new claim.
        assert status["strategy"] == onlinesnap.PUSH_BACKUP, status
        assert status["fallback"] is True, status
        assert "push backup" in status["fallbackReason"], status
        backup = status[onlinesnap.BACKUP_FIELD]
        assert backup["phase"] == onlinesnap.BACKED_UP, backup
        assert backup["consistency"] == onlinesnap.CONSISTENT, backup
        (disk,) = status["disks"]
        assert (disk["kind"], disk["objectName"]) == ("PersistentVolumeClaim", "pushed-root")
        lite.check()
        # The holder Pod that published the backup's claim is gone; only the claim stays.
        assert _leftovers(kube, namespace) == {"pvc": ["pushed-root"]}
        # The backup holds the counter file as the guest had written it, at a
        # value it had acknowledged by the time the snapshot was Ready.
        acked = lite.acked()
        skip = lite.offset // counter.BLOCK_SIZE
        read = f"dd if={disks.DEVICE} bs=4096 skip={skip} count=1 iflag=direct status=none"
        record = counter.parse(
            disks.run_pod(kube, namespace, "pushed-root", ["sh", "-c", read]).encode()
        )
        assert record is not None and 0 < record.value <= acked, (record, acked)
        kube.run("-n", namespace, "delete", "csivmsnapshot", "pushed", "--wait=true")
        kube.wait_for(
            "the backup's claim gone with its snapshot",
            lambda: not _leftovers(kube, namespace),
            timeout=120,
            explain=lambda: str(_leftovers(kube, namespace)),
        )

        # The class cannot expand either: the disk is copied into a larger
        # claim under the running guest, which is then switched to it.
        _grow(kube, namespace, addons.LITE.storage_class)
        larger = f"{CLAIM}-{disks.GROWN.lower()}"
        holder = f"{larger}-holder"
        kube.wait_for(
            f"the guest pivoted onto {larger}",
            lambda: kube.get("csivm", VM, namespace=namespace)["status"].get("pivots") or {},
            timeout=240,
            explain=lambda: _explain(kube, namespace),
        )
        vm = kube.get("csivm", VM, namespace=namespace)
        pivot = vm["status"]["pivots"]["root"]
        assert (pivot["phase"], pivot["claimName"]) == ("Pivoted", larger), pivot
        kube.wait_for(
            f"the VM's disk on {larger}",
            lambda: (
                kube.get("csivm", VM, namespace=namespace)["spec"]["disks"][0]["claimName"]
                == larger
            ),
            timeout=120,
        )
        lite.device = f"{vmpod.RUN_DIR}/copy-vda"  # where the guest writes now
        kube.wait_for(
            f"the guest seeing {disks.GROWN}",
            lambda: lite.on_disk().disk_sectors * 512 == disks.GROWN_MIB * disks.MiB,
            timeout=120,
        )
        lite.check(holders=(holder,))
        # The old claim is deleted, kept only while the launcher Pod still holds it.
        old = kube.get("pvc", CLAIM, namespace=namespace)
        assert old["metadata"].get("deletionTimestamp"), old["metadata"]
        _stop(kube, namespace)
        kube.wait_for(
            "the holder and the old claim gone once the guest stopped",
            lambda: (
                _leftovers(kube, namespace) == {}
                and kube.maybe("pvc", CLAIM, namespace=namespace) is None
            ),
            timeout=180,
            explain=lambda: str(_leftovers(kube, namespace)),
        )
