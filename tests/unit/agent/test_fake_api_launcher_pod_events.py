"""A launcher Pod that turns Running starts its guest at once, with no change of the CsiVM.

Fake API server (see conftest); libvirt's test driver stands in for the
launcher Pod's libvirtd, as in test_fake_api_launcher_pods.
"""

from __future__ import annotations

import pytest

from csi_vm.agent import guests, podevents, state
from csi_vm.agent import run as agent_run
from csi_vm.controller import context
from csi_vm.crd import kinds
from csi_vm.kube import informer, objects
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE, OTHER, read
from .test_fake_api_launcher_pods import POD, _launched, _pod_runs, lagent, lctx

__all__ = ["lagent", "lctx"]  # fixtures
pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]


def _pods_of(agent: state.Agent, handle: informer.Handler, node: str) -> str:
    """The agent's list of its node's launcher Pods; its resourceVersion."""
    return informer.sync(
        agent.objs, kinds.POD, namespace="", handle=handle,
        selector=podevents.SELECTOR, fields=podevents.fields(node),
    )  # fmt: skip


def _changes(agent: state.Agent, handle: informer.Handler, since: str, node: str) -> None:
    """The agent's watch of its node's launcher Pods, from ``since``, for one second."""
    for event in agent.objs.watch(
        kinds.POD, since=since, timeout=1,
        selector=podevents.SELECTOR, fields=podevents.fields(node),
    ):  # fmt: skip
        if event.type != objects.BOOKMARK:
            handle(event.type, event.object)


def _running(vm: objects.Json) -> objects.Json:
    return next(c for c in vm["status"]["conditions"] if c["type"] == guests.RUNNING)


def test_fake_api_a_launcher_pod_turning_running_starts_the_guest(
    fake: fakekube.FakeKube, lctx: context.Context, lagent: state.Agent
) -> None:
    _launched(fake, lctx, lagent, found="kvm", runs=False)  # scheduled, not Running yet
    handle = agent_run.Loop(agent=lagent).pod_events()
    version = _pods_of(lagent, handle, NODE)
    # The Pod's first sight is a pass already: not Running yet, says the VM.
    assert _running(read(lctx, kinds.VM, "web"))["reason"] == "LauncherNotReady"
    assert not lagent.conn.exists(f"{v.NS}_web")
    vm_version = read(lctx, kinds.VM, "web")["metadata"]["resourceVersion"]

    _pod_runs(fake)
    assert read(lctx, kinds.VM, "web")["metadata"]["resourceVersion"] == vm_version
    _changes(lagent, handle, version, NODE)

    assert lagent.conn.status(f"{v.NS}_web").active
    vm = read(lctx, kinds.VM, "web")
    assert (vm["status"]["phase"], vm["status"]["nodeName"]) == ("Running", NODE)


def test_fake_api_the_agent_sees_only_its_nodes_launcher_pods(
    fake: fakekube.FakeKube, lctx: context.Context, lagent: state.Agent
) -> None:
    _launched(fake, lctx, lagent, found="kvm")
    seen: list[str] = []

    def record(kind: str, pod: objects.Json) -> None:
        seen.append(pod["metadata"]["name"])

    _pods_of(lagent, record, OTHER)
    assert seen == []  # the Pod is on NODE
    _pods_of(lagent, record, NODE)
    assert seen == [POD]


def test_fake_api_a_launcher_pod_seen_again_unchanged_is_no_pass(
    fake: fakekube.FakeKube, lctx: context.Context, lagent: state.Agent
) -> None:
    _launched(fake, lctx, lagent, found="kvm")
    passes: list[str] = []

    def fake_step(kind: str, vm: objects.Json) -> None:  # records what the CsiVM step would get
        passes.append(vm["metadata"]["name"])

    handle = podevents.Handler(lagent, fake_step)
    _pods_of(lagent, handle, NODE)
    _pods_of(lagent, handle, NODE)  # the next resync's list: the Pod as it was
    assert passes == ["web"]
    pod = read(lctx, kinds.POD, POD)
    handle("DELETED", pod)
    assert passes == ["web", "web"]  # gone: the VM reports where it stands
