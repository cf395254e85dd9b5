"""The node agent starts and stops guests of its node (fake API server, libvirt's test driver)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from csi_vm.agent import guests, migrations, state
from csi_vm.agent import run as agent_run
from csi_vm.controller import context
from csi_vm.controller import run as controller_run
from csi_vm.crd import kinds
from csi_vm.crd import models as crd
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE, OTHER, provision, read, schedule, vm_on

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _events(fake: fakekube.FakeKube, name: str) -> list[tuple[str, str, str]]:
    res = fake.store.resource("", "v1", "events")
    assert res is not None
    return v.events_about(fake.store.list_objects(res)[0], name)


def _cond(obj: dict, kind: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def _set_running(fake: fakekube.FakeKube, name: str, running: bool) -> None:
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, "csivms")
    assert res is not None
    fake.store.patch(res, v.NS, name, {"spec": {"running": running}})


def test_fake_api_agent_starts_a_vm_of_its_node_once_its_disk_is_published(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web")

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))

    assert agent.conn.status(f"{v.NS}_web").active
    vm = read(ctx, kinds.VM, "web")
    assert (vm["status"]["phase"], vm["status"]["nodeName"]) == ("Running", NODE)
    assert _cond(vm, guests.RUNNING)["status"] == "True"
    assert ("Normal", "Started", f"started on {NODE} with 1 disk(s)") in _events(fake, "web")
    # The domain's UUID is the VM's uid: the same on every node it moves to.
    assert vm["metadata"]["uid"] in agent.conn.xml_desc(f"{v.NS}_web")


def test_fake_api_agent_stops_the_guest_when_running_turns_false(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web")
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))
    _set_running(fake, "web", False)

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))

    assert not agent.conn.exists(f"{v.NS}_web")
    vm = read(ctx, kinds.VM, "web")
    assert vm["status"]["phase"] == "Stopped"
    assert "nodeName" not in vm["status"]  # runs nowhere: the spec decides the next start
    assert ("Normal", "Stopped", f"stopped on {NODE}") in _events(fake, "web")


def test_fake_api_agent_says_which_disk_is_not_published_and_starts_nothing(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web", image=False)

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))  # again: no second Event

    assert not agent.conn.exists(f"{v.NS}_web")
    cond = _cond(read(ctx, kinds.VM, "web"), guests.RUNNING)
    assert (cond["status"], cond["reason"]) == ("False", "DiskNotPublished")
    assert "holds no disk.img" in cond["message"]
    warnings = [e for e in _events(fake, "web") if e[1] == "DiskNotPublished"]
    assert len(warnings) == 1


def test_fake_api_agent_waits_for_the_holder_pod(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(vm_on("web"))  # no Node object: the controller makes no holder Pod
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))

    vm = read(ctx, kinds.VM, "web")
    assert _cond(vm, "NodeAssigned")["reason"] == "NodeNotFound"
    assert _cond(vm, guests.RUNNING)["reason"] == "DiskNotPublished"
    assert "no holder Pod web-disks-n1" in _cond(vm, guests.RUNNING)["message"]
    assert not agent.conn.exists(f"{v.NS}_web")


def test_fake_api_agent_on_an_unknown_node_is_told_by_the_controller(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web", node="nowhere"))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))

    vm = read(ctx, kinds.VM, "web")
    cond = _cond(vm, "NodeAssigned")
    assert (cond["status"], cond["reason"]) == ("False", "NodeNotFound")
    assert "node nowhere does not exist" in cond["message"]
    assert guests.RUNNING not in {c["type"] for c in vm["status"]["conditions"]}
    assert not agent.conn.exists(f"{v.NS}_web")


def test_fake_api_agent_leaves_vms_of_other_nodes_alone(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), v.node(OTHER), vm_on("web", node=OTHER))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    before = read(ctx, kinds.VM, "web")["status"]

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))

    assert read(ctx, kinds.VM, "web")["status"] == before
    assert not agent.conn.exists(f"{v.NS}_web")


def test_fake_api_agent_storage_migration_waits_for_the_new_claims_on_the_target(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), v.node(OTHER), vm_on("web"), v.report("fast", v.BASIC))
    provision(fake, ctx, agent, "web")
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))
    fake.add(v.migration("m1", vm_name="web", node=OTHER))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    assert read(ctx, kinds.MIGRATION, "m1")["status"]["strategy"] == "storage-migration"
    # The controller made a new claim and the target's holder uses it.
    assert read(ctx, kinds.PVC, "m1-root")["metadata"]["ownerReferences"][0]["name"] == "m1"
    holder = read(ctx, kinds.POD, f"web-disks-{OTHER}")
    assert holder["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "m1-root"
    schedule(fake, f"web-disks-{OTHER}")
    pods = fake.store.resource("", "v1", "pods")
    assert pods is not None
    fake.store.patch(pods, v.NS, f"web-disks-{OTHER}", {"status": {"phase": "Running"}})

    migrations.reconcile(agent, read(ctx, kinds.MIGRATION, "m1"))  # the new claim is Pending

    mig = read(ctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Failed"
    assert _cond(mig, "Ready")["reason"] == "DiskNotPublished"
    assert "claim m1-root is Pending" in _cond(mig, "Ready")["message"]
    assert agent.conn.status(f"{v.NS}_web").active
    assert read(ctx, kinds.VM, "web")["status"]["nodeName"] == NODE


def test_fake_api_agent_fails_a_migration_whose_target_has_no_holder(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), v.node(OTHER), vm_on("web"), v.report("fast", v.NATIVE))
    provision(fake, ctx, agent, "web")
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))
    fake.add(v.migration("m1", vm_name="web", node=OTHER))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    assert read(ctx, kinds.POD, f"web-disks-{OTHER}")  # the controller made it
    ctx.objs.delete(kinds.POD, f"web-disks-{OTHER}", namespace=v.NS)

    migrations.reconcile(agent, read(ctx, kinds.MIGRATION, "m1"))

    mig = read(ctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Failed"
    assert _cond(mig, "Ready")["reason"] == "DiskNotPublished"
    assert agent.conn.status(f"{v.NS}_web").active


def test_fake_api_agent_waits_until_the_target_holder_runs(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), v.node(OTHER), vm_on("web"), v.report("fast", v.NATIVE))
    provision(fake, ctx, agent, "web")
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))
    fake.add(v.migration("m1", vm_name="web", node=OTHER))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))

    migrations.reconcile(agent, read(ctx, kinds.MIGRATION, "m1"))  # not even scheduled
    mig = read(ctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Scheduled"
    assert "not scheduled" in _cond(mig, "Ready")["message"]

    schedule(fake, f"web-disks-{OTHER}")
    migrations.reconcile(agent, read(ctx, kinds.MIGRATION, "m1"))  # scheduled, still Pending

    mig = read(ctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Scheduled"
    assert _cond(mig, "Ready")["reason"] == "WaitingForTarget"
    assert "is Pending, not Running" in _cond(mig, "Ready")["message"]
    assert agent.conn.status(f"{v.NS}_web").active


def test_fake_api_agent_fails_a_migration_to_an_unreachable_libvirt_and_keeps_the_guest(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), v.node(OTHER), vm_on("web"), v.report("fast", v.NATIVE))
    provision(fake, ctx, agent, "web")
    guests.reconcile(agent, read(ctx, kinds.VM, "web"))
    fake.add(v.migration("m1", vm_name="web", node=OTHER))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    schedule(fake, f"web-disks-{OTHER}")
    pods = fake.store.resource("", "v1", "pods")
    assert pods is not None
    fake.store.patch(pods, v.NS, f"web-disks-{OTHER}", {"status": {"phase": "Running"}})

    # The agent's peer template makes test:///n2: a test-driver file that does not exist.
    migrations.reconcile(agent, read(ctx, kinds.MIGRATION, "m1"))

    mig = read(ctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Failed"
    assert _cond(mig, "Ready")["reason"] == "TargetUnreachable"
    assert agent.conn.status(f"{v.NS}_web").active
    assert read(ctx, kinds.VM, "web")["status"]["nodeName"] == NODE
    reasons = [e[1] for e in _events(fake, "m1")]
    assert "MigrationStarted" in reasons and "TargetUnreachable" in reasons


def test_fake_api_agent_never_starts_a_guest_whose_migration_is_running(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web")
    # Left by an agent that stopped mid-migration: the guest may be on OTHER now.
    mig = v.migration("m1", vm_name="web", node=OTHER)
    mig["status"] = {"phase": "Running", "sourceNode": OTHER, "targetNode": NODE}
    fake.add(mig)

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))

    assert not agent.conn.exists(f"{v.NS}_web")


def test_fake_api_agent_ignores_migrations_from_other_nodes(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    mig = v.migration("m1", vm_name="web", node=NODE)
    mig["status"] = {"phase": "Scheduled", "sourceNode": OTHER, "targetNode": NODE}
    fake.add(mig)
    migrations.reconcile(agent, read(ctx, kinds.MIGRATION, "m1"))
    assert read(ctx, kinds.MIGRATION, "m1")["status"]["phase"] == "Scheduled"


def test_fake_api_agent_loop_removes_the_guest_of_a_deleted_vm(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web")
    loop = agent_run.Loop(agent=agent, resync=1)
    version = loop.sync(kinds.VM)
    assert agent.conn.status(f"{v.NS}_web").active
    ctx.objs.delete(kinds.VM, "web", namespace=v.NS)
    for event in ctx.objs.watch(kinds.VM, since=version, timeout=1):
        agent_run.handle(agent, kinds.VM, event.object, deleted=event.type == "DELETED")
    assert not agent.conn.exists(f"{v.NS}_web")


def test_fake_api_agent_holder_pod_is_valid_kubernetes(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web"), v.vm("db"))
    provision(fake, ctx, agent, "web")
    pod = read(ctx, kinds.POD, f"web-disks-{NODE}")
    kubernetes_validate.validate(pod, v.KUBERNETES, strict=True)
    mounts = pod["spec"]["containers"][0]
    assert mounts["volumeMounts"][0]["name"] == "root"  # a filesystem claim is mounted
    assert "volumeDevices" not in mounts


def test_fake_api_agent_domain_names_fit_libvirt() -> None:
    long = crd.Meta(name="v" * 200, namespace="n" * 63)
    assert len(state.domain_name(long)) <= 63
    assert state.domain_name(crd.Meta(name="web", namespace="vms")) == "vms_web"
    assert state.domain_name(long) != state.domain_name(crd.Meta(name="w" * 200, namespace="n"))


def test_fake_api_agent_peer_uris_name_or_template() -> None:
    uri = state.peer_uris({"b": "qemu+unix:///system?socket=/x"}, "qemu+tcp://{node}/system")
    assert uri("b") == "qemu+unix:///system?socket=/x"
    assert uri("c") == "qemu+tcp://c/system"
