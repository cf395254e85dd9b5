"""The controller and the node agent write one object's status at once: no update is lost.

Against the fake API server, which refuses a merge patch whose
resourceVersion is stale with 409 Conflict, as the real one does.
"""

from __future__ import annotations

import logging
import threading

import pytest

from csi_vm import errors
from csi_vm.agent import guests, state
from csi_vm.controller import context
from csi_vm.controller import run as controller_run
from csi_vm.crd import kinds, status
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE, provision, read, vm_on

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _cond(kind: str, *, ok: bool = True) -> dict:  # type: ignore[type-arg]
    return status.condition(kind, ok=ok, reason=kind, message=f"{kind} said so", generation=1)


def _types(obj: dict) -> set[str]:  # type: ignore[type-arg]
    return {c["type"] for c in obj["status"].get("conditions") or ()}


def test_fake_api_two_writers_from_one_read_both_land(
    fake: fakekube.FakeKube,
    ctx: context.Context,
    agent: state.Agent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.add(v.vm("web"))
    seen = read(ctx, kinds.VM, "web")
    state.write(agent, kinds.VM, seen, fields={"nodeName": NODE}, conditions=[_cond("Agent")])
    with caplog.at_level(logging.INFO, logger="csi_vm.retry"):
        written = context.write_status(
            ctx, kinds.VM, seen, fields={"disks": []}, conditions=[_cond("Controller")]
        )
    assert "attempt 1/5 failed" in caplog.text
    assert "HTTP 409" in caplog.text
    vm = read(ctx, kinds.VM, "web")
    assert vm["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
    assert (vm["status"]["nodeName"], vm["status"]["disks"]) == (NODE, [])
    assert _types(vm) == {"Agent", "Controller"}


def test_fake_api_racing_writers_lose_no_update(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    """Each writer goes on from its own last write, stale as to the other's."""
    fake.add(v.vm("web"))
    start = read(ctx, kinds.VM, "web")
    failures: list[BaseException] = []

    def controller() -> None:
        obj = start
        for i in range(4):
            fields, conds = {f"c{i}": i}, [_cond(f"C{i}")]
            obj = context.write_status(ctx, kinds.VM, obj, fields=fields, conditions=conds)

    def node_agent() -> None:
        obj = start
        for i in range(4):
            obj = state.write(
                agent, kinds.VM, obj, fields={f"a{i}": i}, conditions=[_cond(f"A{i}")]
            )

    def run(work: object) -> threading.Thread:
        def target() -> None:
            try:
                work()  # type: ignore[operator]
            except BaseException as err:  # pragma: no cover - reported below
                failures.append(err)

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    for thread in [run(controller), run(node_agent)]:
        thread.join(timeout=30)
    assert failures == []
    final = read(ctx, kinds.VM, "web")["status"]
    assert {k: final[k] for k in final if k[0] in "ac" and k[1:].isdigit()} == {
        **{f"c{i}": i for i in range(4)},
        **{f"a{i}": i for i in range(4)},
    }
    assert _types(read(ctx, kinds.VM, "web")) == {f"{w}{i}" for w in "CA" for i in range(4)}


def test_fake_api_a_controller_pass_from_a_stale_read_keeps_the_agents_phase(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.node(NODE), vm_on("web"))
    provision(fake, ctx, agent, "web")
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, "web"))
    assert read(ctx, kinds.VM, "web")["status"]["phase"] == "Starting"  # handed to the agent
    vms = fake.store.resource(kinds.GROUP, kinds.VERSION, kinds.VM.plural)
    assert vms is not None
    fake.store.patch(vms, v.NS, "web", {"spec": {"cpus": 2}})  # a new generation to reconcile
    stale = read(ctx, kinds.VM, "web")

    guests.reconcile(agent, read(ctx, kinds.VM, "web"))  # the agent starts it meanwhile
    controller_run.reconcile(ctx, kinds.VM, stale)

    vm = read(ctx, kinds.VM, "web")
    assert (vm["status"]["phase"], vm["status"]["nodeName"]) == ("Running", NODE)
    assert vm["status"]["observedGeneration"] == 2  # the controller's write landed too
    assert {guests.RUNNING, "DisksReady"} <= _types(vm)


def test_fake_api_a_controller_decision_is_void_once_the_agent_took_the_migration(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent
) -> None:
    fake.add(v.migration("m1", vm_name="web", node="n2"))
    scheduled = {"phase": "Scheduled", "sourceNode": NODE, "targetNode": "n2"}
    obj = state.write(agent, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"),
                      fields=scheduled, conditions=[])  # fmt: skip
    state.write(agent, kinds.MIGRATION, obj, fields={"phase": "Running"},
                conditions=[_cond("Ready", ok=False)])  # fmt: skip

    with pytest.raises(errors.Busy, match="its phase became Running"):
        context.refuse(ctx, kinds.MIGRATION, obj, reason="VMNotFound", message="gone")

    mig = read(ctx, kinds.MIGRATION, "m1")
    assert mig["status"]["phase"] == "Running"
    assert "message" not in mig["status"]
    # Once it is the agent's, the controller's own later writes (from a fresh read) land.
    context.write_status(ctx, kinds.MIGRATION, mig, fields={}, conditions=[_cond("Switched")])
    assert "Switched" in _types(read(ctx, kinds.MIGRATION, "m1"))


def test_fake_api_a_pass_from_an_older_event_leaves_a_finished_object_alone(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.snapshot("s1", vm_name="web"))
    older = read(ctx, kinds.SNAPSHOT, "s1")  # as a watch event from before it finished
    done = status.condition(status.READY, ok=True, reason="Succeeded", message="", generation=1)
    context.write_status(ctx, kinds.SNAPSHOT, older, fields={"phase": "Ready"}, conditions=[done])

    with pytest.raises(errors.Busy, match="its phase became Ready"):
        context.refuse(ctx, kinds.SNAPSHOT, older, reason="VMNotFound", message="gone")

    assert read(ctx, kinds.SNAPSHOT, "s1")["status"]["phase"] == "Ready"
