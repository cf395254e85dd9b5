"""Launcher Pods: the controller makes one per running VM, the agent starts the guest in it.

Fake API server (see conftest); libvirt's test driver stands in for the
launcher Pod's libvirtd (what a launcher Pod really runs is in
tests/integration/cluster/test_launcher_pods.py).
"""

from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys

import kubernetes_validate
import pytest

from csi_vm import errors
from csi_vm.agent import guests, launched, migrations, podmigrations, state
from csi_vm.controller import context, launchpod
from csi_vm.controller import run as controller_run
from csi_vm.crd import kinds, vmpod
from csi_vm.crd import models as crd
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE, TEST_URI, fs_claim, provision, read, schedule, vm_on

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

SETTINGS = launchpod.Settings(image="libvirt:test", overhead="256Mi", vcpu_millis=100)
POD = "web-launcher"


@pytest.fixture
def lctx(ctx: context.Context) -> context.Context:
    return dataclasses.replace(ctx, launcher=SETTINGS)


@pytest.fixture
def lagent(agent: state.Agent, tmp_path: pathlib.Path) -> state.Agent:
    """An agent whose guests run in launcher Pods; each Pod's libvirt is the test driver."""
    return dataclasses.replace(
        agent, launcher_dir=tmp_path / "vms", launcher_uri=lambda _: TEST_URI
    )


def _vm(fake: fakekube.FakeKube, *, memory: str = "1Gi", cpus: int = 2) -> None:
    obj = vm_on("web")
    obj["spec"].update({"memory": memory, "cpus": cpus})
    fake.add(v.node(NODE), obj, fs_claim("web-claim"))


def _bind(fake: fakekube.FakeKube) -> None:
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    fake.store.patch(pvcs, v.NS, "web-claim", {"spec": {"volumeName": "pv-1"}})
    fake.store.patch(pvcs, v.NS, "web-claim", {"status": {"phase": "Bound"}}, subresource="status")


def _pod_runs(fake: fakekube.FakeKube) -> None:
    """What the scheduler and the kubelet do: the Pod on its node, Running."""
    schedule(fake, POD)
    pods = fake.store.resource("", "v1", "pods")
    assert pods is not None
    fake.store.patch(pods, v.NS, POD, {"status": {"phase": "Running"}}, subresource="status")


def _found_kvm(agent: state.Agent, text: str) -> None:
    """What the launcher's container writes once it tested the node's KVM."""
    assert agent.launcher_dir is not None
    run_dir = agent.launcher_dir / vmpod.domain_name(v.NS, "web")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / vmpod.ACCELERATION).write_text(text + "\n")


def _launched(
    fake: fakekube.FakeKube,
    lctx: context.Context,
    lagent: state.Agent,
    *,
    found: str,
    runs: bool = True,
) -> None:
    """The VM's launcher Pod made, its claim bound, the Pod scheduled and (``runs``) Running.

    ``found``: what the Pod wrote of the node's KVM ("": nothing yet).
    """
    _vm(fake)
    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))
    _bind(fake)
    if runs:
        _pod_runs(fake)
    else:
        schedule(fake, POD)
    if found:
        _found_kvm(lagent, found)


def _running_cond(vm: dict) -> dict:  # type: ignore[type-arg]
    return next(c for c in vm["status"]["conditions"] if c["type"] == guests.RUNNING)


def test_fake_api_controller_makes_a_launcher_pod_sized_from_the_vm(
    fake: fakekube.FakeKube, lctx: context.Context
) -> None:
    _vm(fake, memory="1Gi", cpus=2)

    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))

    pod = read(lctx, kinds.POD, POD)
    kubernetes_validate.validate(pod, v.KUBERNETES, strict=True)
    container = pod["spec"]["containers"][0]
    # The guest's memory and the overhead, as request and limit; 100m per vCPU.
    assert container["resources"] == {
        "requests": {"cpu": "200m", "memory": "1280Mi"},
        "limits": {"memory": "1280Mi"},
    }
    assert container["image"] == "libvirt:test"
    # The Pod holds the VM's claim itself (a Filesystem claim: mounted).
    claims = [vol["persistentVolumeClaim"]["claimName"] for vol in pod["spec"]["volumes"][1:]]
    assert claims == ["web-claim"]
    assert {"name": "root", "mountPath": "/csi-vm/root"} in container["volumeMounts"]
    # Its libvirt directory is the node's, where the agent opens the socket.
    run = pod["spec"]["volumes"][0]["hostPath"]["path"]
    assert run == str(vmpod.HOST_DIR / f"{v.NS}_web")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "CsiVM"
    assert pod["spec"]["automountServiceAccountToken"] is False
    # No holder Pod: the launcher Pod publishes the disks.
    assert not fake.store.list_objects(_pods(fake))[0][1:]


def _pods(fake: fakekube.FakeKube):  # type: ignore[no-untyped-def]
    pods = fake.store.resource("", "v1", "pods")
    assert pods is not None
    return pods


def test_fake_api_controller_deletes_the_launcher_pod_when_the_vm_stops(
    fake: fakekube.FakeKube, lctx: context.Context
) -> None:
    _vm(fake)
    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))
    fake.store.patch(_vms(fake), v.NS, "web", {"spec": {"running": False}})

    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))

    assert [p["metadata"]["name"] for p in fake.store.list_objects(_pods(fake))[0]] == []


def _vms(fake: fakekube.FakeKube):  # type: ignore[no-untyped-def]
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, "csivms")
    assert res is not None
    return res


def test_fake_api_agent_waits_for_the_launcher_pod_to_run(
    fake: fakekube.FakeKube, lctx: context.Context, lagent: state.Agent
) -> None:
    _launched(fake, lctx, lagent, found="", runs=False)  # scheduled, not Running yet

    guests.reconcile(lagent, read(lctx, kinds.VM, "web"))

    vm = read(lctx, kinds.VM, "web")
    cond = _running_cond(vm)
    assert (cond["reason"], cond["message"]) == (
        "LauncherNotReady",
        f"launcher Pod {POD} is Pending, not Running yet",
    )
    assert not lagent.conn.exists(f"{v.NS}_web")


@pytest.mark.parametrize(
    ("found", "domain_type", "label"),
    [
        ("tcg: the node has no /dev/kvm", "qemu", "TCG: the node has no /dev/kvm"),
        ("kvm", "kvm", "KVM"),
    ],
)
def test_fake_api_agent_starts_the_guest_in_the_launcher_pod(
    fake: fakekube.FakeKube,
    lctx: context.Context,
    lagent: state.Agent,
    found: str,
    domain_type: str,
    label: str,
) -> None:
    _launched(fake, lctx, lagent, found=found)

    guests.reconcile(lagent, read(lctx, kinds.VM, "web"))

    dom = f"{v.NS}_web"
    assert lagent.conn.status(dom).active
    xml = lagent.conn.xml_desc(dom)
    assert f"type='{domain_type}'" in xml.split(">", 1)[0].replace('"', "'")
    # The disk as the launcher's container has it, not a kubelet path.
    assert "/csi-vm/root/disk.img" in xml
    vm = read(lctx, kinds.VM, "web")
    assert (vm["status"]["phase"], vm["status"]["nodeName"]) == ("Running", NODE)
    assert _running_cond(vm)["message"] == f"started in launcher Pod {POD} on {NODE} ({label})"


def test_fake_api_agent_reports_stopped_only_once_the_launcher_pod_is_gone(
    fake: fakekube.FakeKube, lctx: context.Context, lagent: state.Agent
) -> None:
    _launched(fake, lctx, lagent, found="tcg")
    guests.reconcile(lagent, read(lctx, kinds.VM, "web"))
    fake.store.patch(_vms(fake), v.NS, "web", {"spec": {"running": False}})

    launched.stop(lagent, read(lctx, kinds.VM, "web"))
    assert read(lctx, kinds.VM, "web")["status"]["phase"] == "Stopping"

    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))
    guests.reconcile(lagent, read(lctx, kinds.VM, "web"))
    vm = read(lctx, kinds.VM, "web")
    assert (vm["status"]["phase"], vm["status"].get("nodeName")) == ("Stopped", None)


def test_fake_api_controller_makes_a_migrations_target_pod_and_removes_the_pod_left(
    fake: fakekube.FakeKube, lctx: context.Context
) -> None:
    _vm(fake)
    _block(fake)
    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))
    fake.add(v.node("n2"), v.migration("m1", vm_name="web", node="n2"))
    controller_run.reconcile(lctx, kinds.MIGRATION, read(lctx, kinds.MIGRATION, "m1"))

    mig = read(lctx, kinds.MIGRATION, "m1")
    assert (mig["status"]["phase"], mig["status"]["sourceNode"]) == ("Scheduled", NODE)
    target = read(lctx, kinds.POD, "web-launcher-n2")
    meta = target["metadata"]
    assert meta["annotations"][vmpod.NODE_ANNOTATION] == "n2"
    # A run directory of its own, and the migration's until it succeeded.
    assert meta["annotations"][vmpod.RUN_DIR_ANNOTATION] != str(vmpod.host_dir(v.NS, "web"))
    assert [o["kind"] for o in meta["ownerReferences"]] == ["CsiVMMigration"]
    # No report says the class is shared: a storage migration, into a new claim.
    assert mig["status"]["strategy"] == "storage-migration"
    volumes = [vol.get("persistentVolumeClaim") for vol in target["spec"]["volumes"]]
    assert {"claimName": "m1-root"} in volumes

    # The agent moved the guest: the VM says n2, the migration Succeeded.
    fake.store.patch(fake.store.resource(kinds.GROUP, kinds.VERSION, "csivms"), v.NS, "web",
                     {"status": {"nodeName": "n2"}}, subresource="status")  # fmt: skip
    fake.store.patch(fake.store.resource(kinds.GROUP, kinds.VERSION, "csivmmigrations"), v.NS,
                     "m1", {"status": {"phase": "Succeeded"}}, subresource="status")  # fmt: skip
    controller_run.reconcile(lctx, kinds.MIGRATION, read(lctx, kinds.MIGRATION, "m1"))

    with pytest.raises(errors.NotFound):
        read(lctx, kinds.POD, POD)
    owners = read(lctx, kinds.POD, "web-launcher-n2")["metadata"]["ownerReferences"]
    assert [o["kind"] for o in owners] == ["CsiVM"]
    assert read(lctx, kinds.VM, "web")["spec"]["disks"][0]["claimName"] == "m1-root"
    # The VM's reconcile finds its Pod there and makes no other.
    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))
    with pytest.raises(errors.NotFound):
        read(lctx, kinds.POD, POD)


def test_launcher_acceleration_as_the_pod_wrote_it(tmp_path: pathlib.Path) -> None:
    assert vmpod.read_acceleration(tmp_path) is None
    (tmp_path / vmpod.ACCELERATION).write_text("tcg: a KVM test guest ended with status 124\n")
    found = vmpod.read_acceleration(tmp_path)
    assert found == vmpod.Acceleration(
        accel=vmpod.Accel.TCG, why="a KVM test guest ended with status 124"
    )
    (tmp_path / vmpod.ACCELERATION).write_text("kvm\n")
    assert vmpod.read_acceleration(tmp_path) == vmpod.Acceleration(accel=vmpod.Accel.KVM, why="")


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--launcher-acceleration", "fast", "--launcher-acceleration 'fast': expected one of"),
        ("--launcher-overhead", "lots", "--launcher-overhead: 'lots' is not a size"),
    ],
)
def test_controller_run_refuses_bad_launcher_settings_before_connecting(
    flag: str, value: str, says: str
) -> None:
    cmd = [sys.executable, "-m", "csi_vm", "controller", "run", "--launcher-image", "x"]
    done = subprocess.run(
        [*cmd, flag, value], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == errors.InvalidInput.exit_code, done.stderr
    assert done.stderr.startswith(f"error: {says}"), done.stderr
    assert "Traceback" not in done.stderr


def test_fake_api_a_guest_of_the_node_libvirt_stays_there_when_launcher_pods_come(
    fake: fakekube.FakeKube,
    ctx: context.Context,
    lctx: context.Context,
    agent: state.Agent,
    lagent: state.Agent,
) -> None:
    # Started before launcher Pods were turned on: in the node's libvirt.
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web")
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))
    assert agent.conn.status(f"{v.NS}_web").active
    # Then on: the controller makes a launcher Pod, which runs.
    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))
    _pod_runs(fake)
    _found_kvm(lagent, "tcg")
    started: list[pathlib.Path] = []
    lagent = dataclasses.replace(lagent, launcher_uri=lambda d: started.append(d) or TEST_URI)

    guests.reconcile(lagent, read(lctx, kinds.VM, "web"))

    # No second qemu for the same disks: the launcher's libvirt is never asked.
    assert started == []
    vm = read(lctx, kinds.VM, "web")
    assert (vm["status"]["phase"], _running_cond(vm)["message"]) == (
        "Running",
        f"started on {NODE} with 1 disk(s)",
    )


def test_fake_api_node_libvirt_never_starts_a_guest_that_has_a_launcher_pod(
    fake: fakekube.FakeKube, ctx: context.Context, lctx: context.Context, agent: state.Agent
) -> None:
    # Launcher Pods were on and are off now: the Pod (and its guest) may still be there.
    _vm(fake)
    controller_run.reconcile(lctx, kinds.VM, read(lctx, kinds.VM, "web"))
    _bind(fake)
    _pod_runs(fake)

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))

    assert not agent.conn.exists(f"{v.NS}_web")
    cond = _running_cond(read(ctx, kinds.VM, "web"))
    assert cond["reason"] == "InLauncherPod", cond
    assert POD in cond["message"]


def _block(fake: fakekube.FakeKube) -> None:
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    fake.store.patch(pvcs, v.NS, "web-claim", {"spec": {"volumeMode": "Block"}})


def test_fake_api_storage_migration_of_a_filesystem_disk_is_refused(
    fake: fakekube.FakeKube, lctx: context.Context
) -> None:
    _vm(fake)  # its claim is a Filesystem one
    fake.add(v.node("n2"), v.migration("m1", vm_name="web", node="n2"))
    controller_run.reconcile(lctx, kinds.MIGRATION, read(lctx, kinds.MIGRATION, "m1"))

    mig = read(lctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Rejected"
    assert "disk root is a Filesystem claim" in mig["status"]["message"]
    with pytest.raises(errors.NotFound):
        read(lctx, kinds.POD, "web-launcher-n2")


def test_fake_api_source_agent_waits_for_the_target_pods_libvirtd(
    fake: fakekube.FakeKube, lctx: context.Context, lagent: state.Agent
) -> None:
    _launched(fake, lctx, lagent, found="tcg")
    _block(fake)
    guests.reconcile(lagent, read(lctx, kinds.VM, "web"))
    fake.add(v.node("n2"), v.migration("m1", vm_name="web", node="n2"))
    controller_run.reconcile(lctx, kinds.MIGRATION, read(lctx, kinds.MIGRATION, "m1"))

    migrations.reconcile(lagent, read(lctx, kinds.MIGRATION, "m1"))

    # Nothing moves before the target node's agent says its libvirtd answers.
    mig = read(lctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Scheduled"
    ready = next(c for c in mig["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WaitingForTarget")
    assert guests.active(lagent.conn, state.domain_name(crd.meta(read(lctx, kinds.VM, "web"))))


def test_fake_api_a_migration_deleted_before_it_started_is_not_run(
    fake: fakekube.FakeKube, lctx: context.Context, lagent: state.Agent
) -> None:
    _launched(fake, lctx, lagent, found="tcg")
    _block(fake)
    guests.reconcile(lagent, read(lctx, kinds.VM, "web"))
    fake.add(v.node("n2"), v.migration("m1", vm_name="web", node="n2"))
    controller_run.reconcile(lctx, kinds.MIGRATION, read(lctx, kinds.MIGRATION, "m1"))
    mig = read(lctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Scheduled"
    mig["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"

    with pytest.raises(podmigrations.Refused, match="deleted before it started"):
        podmigrations.run(lagent, mig, read(lctx, kinds.VM, "web"))


def test_a_tls_launcher_waits_for_a_certificate_made_for_itself(
    fake: fakekube.FakeKube, lctx: context.Context
) -> None:
    _vm(fake)
    vm = read(lctx, kinds.VM, "web")
    settings = dataclasses.replace(SETTINGS, tls=True)
    pod = launchpod.body(vm, node=NODE, disks=[], settings=settings, target=True)
    kubernetes_validate.validate(pod, v.KUBERNETES, strict=True)
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["TLS"]["value"] == "1"
    # The Pod's uid, which the agent writes into "ready" with the certificate.
    assert env["POD_UID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert '= "$POD_UID" ]' in container["command"][2]
    assert container["ports"] == [{"name": "libvirt-tls", "containerPort": vmpod.TLS_PORT}]
    assert pod["metadata"]["name"] == vmpod.target_pod_name("web", NODE)
    run = pod["spec"]["volumes"][0]["hostPath"]["path"]
    assert run == str(vmpod.target_run_dir(v.NS, "web", NODE))
