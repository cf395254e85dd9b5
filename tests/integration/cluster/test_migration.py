"""Live migration between launcher Pods on the real two-node cluster.

One counter guest (`launcher.fscounter`, booted from a kernel put into its
launcher's run directory) counts in a file of the ext4 its claim holds; a
value it echoes on its console was written with fsync first. It moves
between the two nodes and back: from its launcher Pod on one node to a
second launcher Pod the controller makes on the other, libvirtd to libvirtd
over TLS (client certificates from the chart's CA, both ways).

After every migration, whatever its outcome: the guest runs in exactly one
launcher Pod, on the node the VM's status names; it still counts; its disk
holds at least every value it acknowledged (on whichever node it ran); and
the namespace holds nothing but the VM's claims and that one Pod.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from csi_vm.crd import vmpod
from csi_vm.flows import vmrun
from launcher import counter, fscounter
from tests.integration.cluster import conftest, disks
from tests.support.cluster import addons, kubectl, layout, reports

Json = dict[str, Any]
API = "csi-vm.io/v1alpha1"
VM = "mover"
NODES = (layout.NODE, layout.NODE2)
#: node-local volumes on either node: a migration copies the disk into a new one
NODE_LOCAL = "csi-vm-nodes"
_ACKED = re.compile(rb"^CSIVMCTR (\d+)\r?$", re.MULTILINE)


def _other(node: str) -> str:
    return NODES[1] if node == NODES[0] else NODES[0]


def _run_dirs(namespace: str) -> list[pathlib.Path]:
    """Every run directory the VM's launcher Pods can have, on both nodes."""
    first = vmpod.host_dir(namespace, VM)
    return [first, *(vmpod.target_run_dir(namespace, VM, n) for n in NODES)]


class Guest:
    """The counter guest: where it runs, what it acknowledged, what its disk holds."""

    def __init__(self, kube: kubectl.Kube, namespace: str, *, offset: int) -> None:
        self.kube, self.namespace, self.offset = kube, namespace, offset

    def vm(self) -> Json:
        return self.kube.get("csivm", VM, namespace=self.namespace)

    def node(self) -> str:
        return str(self.vm()["status"]["nodeName"])

    def pod(self) -> str:
        """The one launcher Pod in the namespace: the guest's."""
        pods = [p["metadata"]["name"] for p in self.kube.items("pods", namespace=self.namespace)]
        assert len(pods) == 1, pods
        return pods[0]

    def acked(self) -> int:
        """The last value the guest echoed on any of its consoles: fsynced before."""
        found = [0]
        for run_dir in _run_dirs(self.namespace):
            log = run_dir / vmpod.CONSOLE
            if log.exists():
                found += [int(n) for n in _ACKED.findall(log.read_bytes())]
        return max(found)

    def on_disk(self, pod: str) -> int:
        """The counter file's value, read from the claim's device in ``pod``."""
        out = self.kube.run(
            "-n", self.namespace, "exec", pod, "--", "dd", f"if={vmpod.device('root')}",
            f"bs={counter.BLOCK_SIZE}", f"skip={self.offset // counter.BLOCK_SIZE}",
            "count=1", "iflag=direct", "status=none",
        ).stdout  # fmt: skip
        record = counter.parse(out.encode(), source=f"{VM}:/{fscounter.FILE}")
        assert record is not None, "the counter file's block is all zeros"
        return record.value

    def counts_past(self, value: int) -> int:
        return int(
            self.kube.wait_for(
                f"the guest counting past {value}",
                lambda: (n := self.acked()) > value and n,
                timeout=120,
                explain=lambda: _explain(self.kube, self.namespace),
            )
        )

    def settled(self) -> str:
        """Wait until one launcher Pod is left; check the guest there. Its node."""
        kube, namespace = self.kube, self.namespace
        kube.wait_for(
            "one launcher Pod left",
            lambda: len(kube.items("pods", namespace=namespace)) == 1,
            timeout=180,
            explain=lambda: _explain(kube, namespace),
        )
        pod, node = self.pod(), self.node()
        placed = kube.get("pod", pod, namespace=namespace)["spec"]["nodeName"]
        assert placed == node, (pod, placed, node)
        dom = vmpod.domain_name(namespace, VM)
        state = kube.run("-n", namespace, "exec", pod, "--", "virsh", "domstate", dom).stdout
        assert state.strip() == "running", state
        acked = self.acked()
        self.counts_past(acked)
        # the disk is written before the console: it never holds less than was echoed
        assert self.on_disk(pod) >= acked
        return node


def _explain(kube: kubectl.Kube, namespace: str) -> str:
    return (
        kube.describe("-n", namespace, "csivm,csivmmigration")
        + kube.run("-n", namespace, "get", "pvc,pods", "-o", "wide", check=False).stdout
        + kube.logs("-n", conftest.RELEASE_NAMESPACE, "-l",
                    "app.kubernetes.io/component=node", "-c", "launcher", "--tail=40")
        + kube.logs("-n", conftest.RELEASE_NAMESPACE, "-l",
                    "app.kubernetes.io/component=controller", "--tail=20")
    )  # fmt: skip


def _vm(running: bool, storage_class: str) -> Json:
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
                {"name": "root", "size": disks.DISK, "claimName": f"{VM}-root",
                 "storageClassName": storage_class}
            ],
        },
    }  # fmt: skip


def _boot_files(namespace: str) -> None:
    """The counter guest's kernel in every run directory its Pods can have.

    A migration's target qemu opens the same paths as the source's.
    """
    from csi_vm.agent import launched  # noqa: PLC0415 - its names only

    built = vmrun.counter_guest(agent=True)
    for run_dir in _run_dirs(namespace):
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built.kernel, run_dir / launched.BOOT_KERNEL)
        shutil.copyfile(built.initramfs, run_dir / launched.BOOT_INITRD)
        (run_dir / launched.BOOT_CMDLINE).write_text(built.cmdline)


def _namespace(kube: kubectl.Kube, prefix: str) -> Iterator[str]:
    name = f"e2e-{prefix}-{uuid.uuid4().hex[:6]}"
    kube.run("create", "namespace", name)
    try:
        yield name
    finally:
        kube.run("delete", "namespace", name, "--wait=true", "--timeout=300s", check=False)
        for run_dir in _run_dirs(name):
            shutil.rmtree(run_dir, ignore_errors=True)


def _boot(
    kube: kubectl.Kube, namespace: str, seed: pathlib.Path, *, storage_class: str, access: str
) -> Iterator[Guest]:
    """The counter guest on a claim of ``storage_class``, running on the first node."""
    seed.chmod(0o755)
    image = seed / "root.img"
    fscounter.make_image(image, size=disks.DISK_MIB * disks.MiB)
    offset = fscounter.record_offset(image)
    kube.apply(disks.block_claim(f"{VM}-root", storage_class, access=access), namespace=namespace)
    disks.seed(kube, namespace, f"{VM}-root", image, node=layout.NODE)
    _boot_files(namespace)
    kube.apply(_vm(True, storage_class), namespace=namespace)
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
    found.counts_past(3)  # booted, its filesystem mounted
    yield found
    kube.run("-n", namespace, "delete", "csivm", VM, "--wait=true", check=False)


@pytest.fixture(scope="module")
def shared_ns(chart: kubectl.Kube) -> Iterator[str]:
    yield from _namespace(chart, "migsh")


@pytest.fixture(scope="module")
def shared_guest(
    chart: kubectl.Kube, shared_ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Guest]:
    """On a ReadWriteMany claim of the class verified shared: migrations move memory only."""
    status = reports.verify(chart, addons.SHARED.storage_class)
    assert status["plan"]["live_migration"]["strategy"] == "shared-volume", status["plan"]
    seed = tmp_path_factory.mktemp("migsh-seed")
    yield from _boot(
        chart, shared_ns, seed, storage_class=addons.SHARED.storage_class, access="ReadWriteMany"
    )


@pytest.fixture(scope="module")
def mig_ns(chart: kubectl.Kube) -> Iterator[str]:
    yield from _namespace(chart, "mig")


@pytest.fixture(scope="module")
def guest(
    chart: kubectl.Kube, mig_ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Guest]:
    """On a node-local claim: every migration copies its disk."""
    seed = tmp_path_factory.mktemp("mig-seed")
    yield from _boot(chart, mig_ns, seed, storage_class=NODE_LOCAL, access="ReadWriteOnce")


def _start_migration(
    kube: kubectl.Kube, namespace: str, name: str, target: str, *, bandwidth: int = 0
) -> None:
    spec: Json = {"vmName": VM, "targetNode": target}
    if bandwidth:
        spec["bandwidthMiBps"] = bandwidth
    body = {"apiVersion": API, "kind": "CsiVMMigration", "metadata": {"name": name}, "spec": spec}
    kube.apply(body, namespace=namespace)


def _phase(kube: kubectl.Kube, namespace: str, name: str, want: tuple[str, ...]) -> Json:
    def check() -> Json | None:
        mig = kube.get("csivmmigration", name, namespace=namespace)
        return mig if (mig.get("status") or {}).get("phase") in want else None

    return dict(kube.wait_for(f"CsiVMMigration {name} {'/'.join(want)}", check, timeout=300,
                              explain=lambda: _explain(kube, namespace)))  # fmt: skip


def _claims(kube: kubectl.Kube, namespace: str) -> list[str]:
    return sorted(c["metadata"]["name"] for c in kube.items("pvc", namespace=namespace))


def _only_claims(kube: kubectl.Kube, namespace: str, guest: Guest) -> None:
    """The VM's claim and the one the user made: no claim of a migration is left."""
    kept = sorted({guest.vm()["spec"]["disks"][0]["claimName"], f"{VM}-root"})
    kube.wait_for("no claim left over", lambda: _claims(kube, namespace) == kept, timeout=120,
                  explain=lambda: str(_claims(kube, namespace)))  # fmt: skip


def _agent_on(kube: kubectl.Kube, node: str) -> str:
    pods = kube.items("pods", namespace=conftest.RELEASE_NAMESPACE,
                      selector="app.kubernetes.io/component=node")  # fmt: skip
    return next(p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == node)


def test_shared_volume_migration_moves_the_guest_there_and_back(
    chart: kubectl.Kube, shared_ns: str, shared_guest: Guest
) -> None:
    kube, namespace, guest = chart, shared_ns, shared_guest
    start = guest.settled()
    for name, target in (("there", _other(start)), ("back", start)):
        before = guest.acked()
        _start_migration(kube, namespace, name, target)
        status = _phase(kube, namespace, name, ("Succeeded", "Failed"))["status"]
        assert (status["phase"], status["strategy"]) == ("Succeeded", "shared-volume"), status
        assert guest.settled() == target
        assert guest.acked() > before
        # Memory only: the guest keeps its one claim, published on both nodes in turn.
        assert guest.vm()["spec"]["disks"][0]["claimName"] == f"{VM}-root"
        assert _claims(kube, namespace) == [f"{VM}-root"]
        kube.run("-n", namespace, "delete", "csivmmigration", name, "--wait=true")


# A client certificate from a CA of its own: what a Pod of another release,
# or anyone else, could offer. The client trusts both CAs (the real one for
# the server, its own because libvirt checks its certificate against them):
# only the server's check can refuse it.
_FOREIGN_CLIENT = """set -e
d=/tmp/foreign; rm -rf $d; mkdir -p $d; cd $d
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other -keyout ca.key -out ca.crt
openssl req -new -newkey rsa:2048 -nodes -subj /CN=intruder -keyout clientkey.pem -out c.csr
printf 'extendedKeyUsage=clientAuth\\n' > ext
openssl x509 -req -in c.csr -CA ca.crt -CAkey ca.key -set_serial 7 -days 1 -extfile ext \\
  -out clientcert.pem
cat /etc/pki/CA/cacert.pem ca.crt > cacert.pem
"""


def test_a_launchers_libvirtd_takes_only_clients_with_the_releases_certificates(
    chart: kubectl.Kube, shared_ns: str, shared_guest: Guest
) -> None:
    kube, namespace = chart, shared_ns
    pod = shared_guest.pod()
    ip = kube.get("pod", pod, namespace=namespace)["status"]["podIP"]

    def virsh(uri: str) -> subprocess.CompletedProcess[str]:
        return kube.run("-n", namespace, "exec", pod, "--", "virsh", "-c", uri, "uri",
                        check=False)  # fmt: skip

    # The Pod's own certificate (libvirt's default client files): answered.
    mine = virsh(f"qemu+tls://{ip}/system")
    assert mine.returncode == 0, mine.stderr
    # A certificate of another CA: refused by the server.
    kube.run("-n", namespace, "exec", pod, "--", "sh", "-c", _FOREIGN_CLIENT)
    foreign = virsh(f"qemu+tls://{ip}/system?pkipath=/tmp/foreign")
    assert foreign.returncode != 0, foreign.stdout
    # No plain TCP port at all.
    plain = virsh(f"qemu+tcp://{ip}/system")
    assert plain.returncode != 0, plain.stdout


def test_storage_migration_copies_the_disk_to_the_other_node(
    chart: kubectl.Kube, mig_ns: str, guest: Guest
) -> None:
    kube, namespace = chart, mig_ns
    target = _other(guest.settled())
    before = guest.acked()
    _start_migration(kube, namespace, "there", target)
    status = _phase(kube, namespace, "there", ("Succeeded", "Failed"))["status"]
    assert (status["phase"], status["strategy"]) == ("Succeeded", "storage-migration"), status
    assert guest.settled() == target
    assert guest.acked() > before
    # The VM now uses the claim made on the target; the one it left is gone
    # (the claim the user made stays the user's).
    claim = guest.vm()["spec"]["disks"][0]["claimName"]
    assert claim == "there-root"
    pv = kube.get("pv", kube.get("pvc", claim, namespace=namespace)["spec"]["volumeName"])
    assert target in str(pv["spec"].get("nodeAffinity")), pv["spec"]
    _only_claims(kube, namespace, guest)
    kube.run("-n", namespace, "delete", "csivmmigration", "there", "--wait=true")


def test_node_agent_killed_mid_migration_leaves_the_guest_on_one_node(
    chart: kubectl.Kube, mig_ns: str, guest: Guest
) -> None:
    kube, namespace = chart, mig_ns
    source = guest.settled()
    # Capped, so the copy still runs when the agent goes (some 25 s for the
    # disk and the guest's memory), above what the guest dirties.
    _start_migration(kube, namespace, "killed", _other(source), bandwidth=8)
    _phase(kube, namespace, "killed", ("Running",))
    kube.run("-n", conftest.RELEASE_NAMESPACE, "delete", "pod", _agent_on(kube, source))
    # Its replacement finds the migration Running and settles it from the
    # source Pod's libvirtd: moved, or back where it was, never both.
    status = _phase(kube, namespace, "killed", ("Succeeded", "Failed"))["status"]
    assert "DataSafety" not in str(status), status
    assert guest.settled() == (_other(source) if status["phase"] == "Succeeded" else source)
    _only_claims(kube, namespace, guest)
    kube.run("-n", namespace, "delete", "csivmmigration", "killed", "--wait=true")


def test_cancelled_migration_leaves_the_guest_where_it_was(
    chart: kubectl.Kube, mig_ns: str, guest: Guest
) -> None:
    kube, namespace = chart, mig_ns
    source = guest.settled()
    claim = guest.vm()["spec"]["disks"][0]["claimName"]
    _start_migration(kube, namespace, "cancelled", _other(source), bandwidth=1)
    _phase(kube, namespace, "cancelled", ("Running",))
    # Deleting the migration cancels it: the job is aborted, its target Pod
    # and new claim go with it.
    kube.run("-n", namespace, "delete", "csivmmigration", "cancelled", "--wait=true")
    assert guest.settled() == source
    assert guest.vm()["spec"]["disks"][0]["claimName"] == claim
    _only_claims(kube, namespace, guest)
