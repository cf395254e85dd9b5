"""What the controller does for the node agent (fake API server): holder Pods, modes, nodes."""

from __future__ import annotations

import pytest

from csi_vm import errors
from csi_vm.controller import context
from csi_vm.controller import run as controller_run
from csi_vm.crd import kinds, names
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE, OTHER, read

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _vm(name: str, *, sc: str = "fast", node: str = NODE) -> dict:  # type: ignore[type-arg]
    obj = v.vm(name, sc=sc, running=True)
    obj["spec"]["nodeName"] = node
    return obj


def _set_status(fake: fakekube.FakeKube, plural: str, name: str, status: dict) -> None:  # type: ignore[type-arg]
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, plural)
    assert res is not None
    fake.store.patch(res, v.NS, name, {"status": status}, subresource="status")


@pytest.mark.parametrize(
    ("plan", "modes"),
    [(v.NATIVE, ["ReadWriteMany"]), (v.BASIC, ["ReadWriteOnce"])],
    ids=["shared-class-rwx", "node-local-class-rwo"],
)
def test_fake_api_claims_are_shared_only_where_migration_shares_them(
    fake: fakekube.FakeKube,
    ctx: context.Context,
    plan: dict,
    modes: list[str],  # type: ignore[type-arg]
) -> None:
    fake.add(v.node(NODE), v.report("fast", plan), _vm("web"))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    assert read(ctx, kinds.PVC, "web-root")["spec"]["accessModes"] == modes


def test_fake_api_holder_pod_is_pinned_and_uses_every_claim_as_a_device(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.node(NODE), _vm("web"))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    pod = read(ctx, kinds.POD, f"web-disks-{NODE}")
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert terms["nodeSelectorTerms"][0]["matchFields"] == [
        {"key": "metadata.name", "operator": "In", "values": [NODE]}
    ]
    assert "nodeName" not in pod["spec"]  # through the scheduler: WaitForFirstConsumer binds
    assert pod["spec"]["volumes"] == [
        {"name": "root", "persistentVolumeClaim": {"claimName": "web-root"}}
    ]
    assert pod["spec"]["containers"][0]["volumeDevices"][0]["name"] == "root"
    assert pod["metadata"]["ownerReferences"][0]["name"] == "web"  # goes with the VM
    vm = read(ctx, kinds.VM, "web")
    assert vm["status"]["phase"] == "Provisioning"  # not bound yet: still the controller's


def test_fake_api_migration_to_an_unknown_node_or_its_own_node_is_refused(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.node(NODE), _vm("web"), v.migration("away", vm_name="web", node="node-z"))
    fake.add(v.migration("home", vm_name="web", node=NODE))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "away"))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "home"))
    assert read(ctx, kinds.MIGRATION, "away")["status"]["phase"] == "NodeNotFound"
    assert read(ctx, kinds.MIGRATION, "home")["status"]["phase"] == "AlreadyOnTarget"


def test_fake_api_finished_migrations_release_only_the_node_the_vm_left(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.node(NODE), v.node(OTHER), v.report("fast", v.NATIVE), _vm("web"))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    fake.add(v.migration("m1", vm_name="web", node=OTHER))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    assert read(ctx, kinds.POD, f"web-disks-{OTHER}")  # the target's, made with the decision

    # Succeeded, but the VM's status still says NODE (say, moved back since): keep both.
    _set_status(fake, "csivmmigrations", "m1", {"phase": "Succeeded"})
    _set_status(fake, "csivms", "web", {"nodeName": NODE})
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    assert read(ctx, kinds.POD, f"web-disks-{NODE}")

    _set_status(fake, "csivms", "web", {"nodeName": OTHER})
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    with pytest.raises(errors.NotFound):
        read(ctx, kinds.POD, f"web-disks-{NODE}")
    assert read(ctx, kinds.POD, f"web-disks-{OTHER}")


def test_fake_api_holder_names_stay_valid_for_long_names() -> None:
    name = names.holder_pod("v" * 200, "n" * 200)
    assert len(name) <= 253
    assert name != names.holder_pod("v" * 200, "m" * 200)


def test_fake_api_a_running_vm_without_a_node_is_told_to_name_one(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.vm("web", running=True))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    conds = read(ctx, kinds.VM, "web")["status"]["conditions"]
    node = next(c for c in conds if c["type"] == "NodeAssigned")
    assert (node["status"], node["reason"]) == ("False", "NoNode")
    assert "spec.nodeName is empty" in node["message"]


def test_fake_api_the_controller_leaves_the_agents_phase_alone(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.node(NODE), _vm("web"))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    fake.store.patch(pvcs, v.NS, "web-root", {"status": {"phase": "Bound"}}, subresource="status")
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    assert read(ctx, kinds.VM, "web")["status"]["phase"] == "Starting"  # handed to the agent
    _set_status(fake, "csivms", "web", {"phase": "Running", "nodeName": NODE})
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    assert read(ctx, kinds.VM, "web")["status"]["phase"] == "Running"


def test_fake_api_a_holder_follows_the_vms_claims_while_the_vm_is_not_there(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.node(NODE), _vm("web"))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    # A disk switched to another claim (as a copy to a larger one does).
    disks = [{"name": "root", "size": "1Gi", "storageClassName": "fast", "claimName": "web-big"}]
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": disks}}, namespace=v.NS)
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))  # the old holder goes
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))  # the new one comes
    pod = read(ctx, kinds.POD, f"web-disks-{NODE}")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "web-big"

    # Under a running guest the holder stays, whatever the spec says now.
    _set_status(fake, "csivms", "web", {"nodeName": NODE})
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": [{**disks[0], "claimName": "web-x"}]}},
                   namespace=v.NS)  # fmt: skip
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    pod = read(ctx, kinds.POD, f"web-disks-{NODE}")
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "web-big"


def _storage_migration(fake: fakekube.FakeKube, ctx: context.Context) -> None:
    fake.add(v.node(NODE), v.node(OTHER), v.report("fast", v.BASIC), _vm("web"))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    fake.add(v.migration("m1", vm_name="web", node=OTHER))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    assert read(ctx, kinds.MIGRATION, "m1")["status"]["strategy"] == "storage-migration"


def test_fake_api_storage_migration_switches_the_vm_to_its_new_claims_once(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _storage_migration(fake, ctx)
    # What the source node's agent writes after the move.
    _set_status(fake, "csivms", "web", {"nodeName": OTHER})
    _set_status(fake, "csivmmigrations", "m1", {"phase": "Succeeded"})

    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))

    vm = read(ctx, kinds.VM, "web")
    assert vm["spec"]["disks"][0]["claimName"] == "m1-root"
    assert read(ctx, kinds.PVC, "m1-root")["metadata"]["ownerReferences"][0]["name"] == "web"
    with pytest.raises(errors.NotFound):
        read(ctx, kinds.PVC, "web-root")  # the source's claim, the VM's own: retired
    with pytest.raises(errors.NotFound):
        read(ctx, kinds.POD, f"web-disks-{NODE}")
    conds = read(ctx, kinds.MIGRATION, "m1")["status"]["conditions"]
    assert any(c["type"] == "ClaimsSwitched" for c in conds)
    # Seen again (a resync), nothing moves twice.
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": vm["spec"]["disks"]}}, namespace=v.NS)
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    assert read(ctx, kinds.VM, "web")["spec"]["disks"][0]["claimName"] == "m1-root"
    assert read(ctx, kinds.PVC, "m1-root")


def test_fake_api_failed_storage_migration_drops_the_new_claims(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    _storage_migration(fake, ctx)
    _set_status(fake, "csivmmigrations", "m1", {"phase": "Failed"})

    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))

    with pytest.raises(errors.NotFound):
        read(ctx, kinds.PVC, "m1-root")
    with pytest.raises(errors.NotFound):
        read(ctx, kinds.POD, f"web-disks-{OTHER}")
    assert read(ctx, kinds.PVC, "web-root")
    assert "claimName" not in read(ctx, kinds.VM, "web")["spec"]["disks"][0]
