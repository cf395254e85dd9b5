"""The node agent's declared RBAC list against the calls it really makes (fake API server).

Every call must be in `csi_vm.agent.rbac` (or a real cluster answers 403),
and every grant there must be used (or the chart's ClusterRole for the
DaemonSet, which the chart tests hold to the same list, grants too much).
"""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from csi_vm.agent import launchers, migrations, online_snapshot, podevents, rbac, state
from csi_vm.agent import run as agent_run
from csi_vm.controller import context
from csi_vm.controller import run as controller_run
from csi_vm.crd import kinds, onlinesnap
from csi_vm.kube import informer
from tests.support import fakekube
from tests.support import vmobjects as v
from tests.unit.controller.test_fake_api_rbac import Grant, _calls

from .conftest import NODE, OTHER, provision, read, vm_on
from .test_fake_api_online_snapshot import asked, launcher_agent

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _declared() -> set[Grant]:
    return {(r.group, r.resource, verb) for r in rbac.AGENT for verb in r.verbs}


def test_fake_api_agent_calls_exactly_what_it_declares(
    fake: fakekube.FakeKube, ctx: context.Context, agent: state.Agent, tmp_path: pathlib.Path
) -> None:
    fake.add(v.node(NODE), v.node(OTHER), vm_on("web"), v.report("fast", v.BASIC))
    provision(fake, ctx, agent, "web")
    fake.add(v.migration("m1", vm_name="web", node=OTHER))
    controller_run.reconcile(ctx, kinds.MIGRATION, read(ctx, kinds.MIGRATION, "m1"))
    fake.requests.clear()  # the controller's calls are its own test's

    loop = agent_run.Loop(agent=agent, resync=1)
    for res in agent_run.STEPS:
        version = loop.sync(res)  # starts web; m1 waits for its target holder
        list(agent.objs.watch(res, since=version, timeout=1))
    ready = next(c for c in read(ctx, kinds.MIGRATION, "m1")["status"]["conditions"]
                 if c["type"] == "Ready")  # fmt: skip
    assert ready["reason"] == "WaitingForTarget"
    migrations.reconcile(agent, read(ctx, kinds.MIGRATION, "m1"))  # finished: nothing more
    # A snapshot of a VM in its launcher Pod: thawed once its VolumeSnapshot is cut.
    asked(fake, phase=onlinesnap.FROZEN, cut=True)
    online_snapshot.reconcile(
        launcher_agent(agent, tmp_path, "web"), read(ctx, kinds.SNAPSHOT, "s1")
    )
    # A launcher run directory no Pod uses any more: the launcher Pods are listed.
    (tmp_path / "vms" / "left_behind").mkdir(parents=True)
    launchers.sweep(dataclasses.replace(agent, launcher_dir=tmp_path / "vms"))
    # The node's launcher Pods are watched: a change of one is a pass of its VM.
    pods = {"selector": podevents.SELECTOR, "fields": podevents.fields(NODE)}
    version = informer.sync(agent.objs, kinds.POD, namespace="", handle=loop.pod_events(), **pods)
    list(agent.objs.watch(kinds.POD, since=version, timeout=1, **pods))

    calls, declared = _calls(fake), _declared()
    assert not calls - declared, f"called but not declared: {sorted(calls - declared)}"
    assert not declared - calls, f"declared but never called: {sorted(declared - calls)}"
