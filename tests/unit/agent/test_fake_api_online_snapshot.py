"""The agent's side of a snapshot of a VM in its launcher Pod (fake API, libvirt's test driver).

The launcher's libvirt is libvirt's test driver loaded from a file with the
VM's domain (running, no qemu, no guest agent channel); the controller is
played by status patches and a VolumeSnapshot put into the fake. A guest
that really freezes is tests/integration/cluster/test_online_ops.py's.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import pytest

from csi_vm.agent import online_snapshot, state
from csi_vm.crd import kinds, onlinesnap, vmpod
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]
Obj = dict[str, Any]


def launcher_agent(agent: state.Agent, tmp_path: pathlib.Path, vm: str) -> state.Agent:
    """``agent`` with launcher Pods, whose one launcher runs ``vm``'s domain."""
    dom = vmpod.domain_name(v.NS, vm)
    node_xml = tmp_path / "launcher.xml"
    node_xml.write_text(
        f"<node><domain type='test'><name>{dom}</name><memory>8192</memory>"
        "<os><type>hvm</type></os></domain></node>"
    )
    return dataclasses.replace(
        agent, launcher_dir=tmp_path, launcher_uri=lambda _dir: f"test://{node_xml}"
    )


def asked(fake: fakekube.FakeKube, *, phase: str, cut: bool) -> None:
    """A snapshot ``s1`` of ``web`` at ``phase``, its VolumeSnapshot made (and ``cut``)."""
    fake.add(v.snapshot("s1", vm_name="web"))
    res = fake.store.resource(kinds.GROUP, kinds.VERSION, "csivmsnapshots")
    assert res is not None
    status = {
        "disks": [{"name": "root", "strategy": "csi-snapshot"}],
        onlinesnap.FIELD: {"phase": phase, "nodeName": NODE},
    }
    fake.store.patch(res, v.NS, "s1", {"status": status}, subresource="status")
    made = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "s1-root", "namespace": v.NS},
        "spec": {"source": {"persistentVolumeClaimName": "web-root"}},
    }
    fake.add(made)
    if cut:
        snaps = fake.store.resource("snapshot.storage.k8s.io", "v1", "volumesnapshots")
        assert snaps is not None
        cut_status = {"status": {"creationTime": "2026-01-01T00:00:00Z"}}
        fake.store.patch(snaps, v.NS, "s1-root", cut_status, subresource="status")


def _online(agent: state.Agent) -> Obj:
    return onlinesnap.of(agent.objs.get(kinds.SNAPSHOT, "s1", namespace=v.NS))


def test_a_guest_found_frozen_is_thawed_once_its_snapshot_is_cut(
    fake: fakekube.FakeKube, agent: state.Agent, tmp_path: pathlib.Path
) -> None:
    asked(fake, phase=onlinesnap.FROZEN, cut=True)
    launcher = launcher_agent(agent, tmp_path, "web")
    online_snapshot.reconcile(launcher, agent.objs.get(kinds.SNAPSHOT, "s1", namespace=v.NS))
    assert _online(agent)["phase"] == onlinesnap.THAWED


def test_a_snapshot_never_cut_is_given_up_and_the_guest_thawed(
    fake: fakekube.FakeKube, agent: state.Agent, tmp_path: pathlib.Path
) -> None:
    asked(fake, phase=onlinesnap.FROZEN, cut=False)
    launcher = launcher_agent(agent, tmp_path, "web")
    ticks = iter(range(0, 1000, 30))  # a clock that passes the bound in three reads
    obj = agent.objs.get(kinds.SNAPSHOT, "s1", namespace=v.NS)
    online_snapshot.reconcile(launcher, obj, clock=lambda: float(next(ticks)))
    online = _online(agent)
    assert online["phase"] == onlinesnap.FAILED
    assert "not all taken within 60 s" in online["reason"]


def test_a_guest_without_an_agent_is_snapshotted_crash_consistent(
    fake: fakekube.FakeKube, agent: state.Agent, tmp_path: pathlib.Path
) -> None:
    asked(fake, phase=onlinesnap.REQUESTED, cut=False)
    launcher = launcher_agent(agent, tmp_path, "web")
    online_snapshot.reconcile(launcher, agent.objs.get(kinds.SNAPSHOT, "s1", namespace=v.NS))
    online = _online(agent)
    assert (online["phase"], online["consistency"]) == (
        onlinesnap.NOT_FROZEN,
        onlinesnap.CRASH_CONSISTENT,
    )
    assert "no guest agent is connected" in online["reason"]


def test_another_nodes_snapshot_is_left_alone(
    fake: fakekube.FakeKube, agent: state.Agent, tmp_path: pathlib.Path
) -> None:
    asked(fake, phase=onlinesnap.REQUESTED, cut=False)
    elsewhere = dataclasses.replace(launcher_agent(agent, tmp_path, "web"), node="n2")
    online_snapshot.reconcile(elsewhere, agent.objs.get(kinds.SNAPSHOT, "s1", namespace=v.NS))
    assert _online(agent)["phase"] == onlinesnap.REQUESTED
