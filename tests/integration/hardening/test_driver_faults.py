"""Flows through a fault-injection proxy: complete after recovery or roll back cleanly.

Each flow runs once per fault against a lab whose config reaches the real
local driver only through `tests.support.faultproxy`. After every run: no
flow left unfinished, no lock, no orphaned or missing CSI object, the source
VM's data byte for byte as imported. A completed run is undone so the next
fault starts from the same state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import grpc
import pytest

from csi_vm import errors
from csi_vm.flows import offline_disk, snapshots, vms, volume_actions
from csi_vm.store import records
from tests.integration.hardening.conftest import SIZE, ProxyLab, settle
from tests.support import reliability

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

Code = grpc.StatusCode


@dataclasses.dataclass(frozen=True)
class FlowCase:
    run: Callable[[ProxyLab], object]
    #: the RPC that does the flow's work, and how many of its calls to let through first
    key: frozenset[str]
    after: int
    done: Callable[[ProxyLab], bool]
    undo: Callable[[ProxyLab], object]


def _vm_names(lab: ProxyLab) -> set[str]:
    return {vm.name for vm in records.list_vms(lab.env.store)}


def _root_size(lab: ProxyLab) -> int:
    return records.get_vm(lab.env.store, "vm1").disk("root").size


_grown: dict[int, int] = {}


def _expand(lab: ProxyLab) -> object:
    _grown[id(lab)] = _root_size(lab) + SIZE
    return offline_disk.expand(lab.env, vm="vm1", disk="root", size=_grown[id(lab)])


def _nothing(lab: ProxyLab) -> None:
    return None


FLOWS: dict[str, FlowCase] = {
    "vm-create": FlowCase(
        run=lambda lab: vms.create(lab.env, lab.spec("vm2")),
        key=frozenset({"CreateVolume"}),
        after=1,
        done=lambda lab: "vm2" in _vm_names(lab),
        undo=lambda lab: vms.delete(lab.env, name="vm2"),
    ),
    "snapshot": FlowCase(
        run=lambda lab: snapshots.create(lab.env, vm_name="vm1", name="s2"),
        key=frozenset({"CreateVolumeGroupSnapshot", "CreateSnapshot"}),
        after=0,
        done=lambda lab: records.find_snapshot(lab.env.store, "s2") is not None,
        undo=lambda lab: snapshots.delete(lab.env, name="s2"),
    ),
    "clone": FlowCase(
        run=lambda lab: vms.clone(lab.env, source="vm1", target="vm2"),
        key=frozenset({"CreateVolume"}),
        after=1,
        done=lambda lab: "vm2" in _vm_names(lab),
        undo=lambda lab: vms.delete(lab.env, name="vm2"),
    ),
    "expand": FlowCase(
        run=_expand,
        key=frozenset({"ControllerExpandVolume"}),
        after=0,
        done=lambda lab: _root_size(lab) == _grown[id(lab)],
        undo=_nothing,
    ),
    "restore-as": FlowCase(
        run=lambda lab: vms.restore(lab.env, snapshot="s1", as_vm="vm2"),
        key=frozenset({"CreateVolume"}),
        after=1,
        done=lambda lab: "vm2" in _vm_names(lab),
        undo=lambda lab: vms.delete(lab.env, name="vm2"),
    ),
}

# fault id -> (switch it on, the outcome it must have; None: either)
FAULTS: dict[str, tuple[Callable[[ProxyLab, FlowCase], None], str | None]] = {
    "driver-unavailable-2-calls": (
        lambda lab, f: lab.proxy.fail(Code.UNAVAILABLE, calls=2),
        reliability.COMPLETED,
    ),
    "driver-aborted-2-calls": (
        lambda lab, f: lab.proxy.fail(Code.ABORTED, calls=2),
        reliability.COMPLETED,
    ),
    "driver-deadline-2-calls": (
        lambda lab, f: lab.proxy.fail(Code.DEADLINE_EXCEEDED, calls=2),
        reliability.COMPLETED,
    ),
    "driver-outage-0.5s": (
        lambda lab, f: lab.proxy.fail(Code.UNAVAILABLE, seconds=0.5),
        reliability.COMPLETED,
    ),
    "driver-unavailable-persistent": (
        lambda lab, f: lab.proxy.fail(Code.UNAVAILABLE, methods=f.key, after=f.after),
        reliability.ROLLED_BACK,
    ),
    "driver-aborted-persistent": (
        lambda lab, f: lab.proxy.fail(Code.ABORTED, methods=f.key, after=f.after),
        reliability.ROLLED_BACK,
    ),
    "driver-hang": (
        lambda lab, f: lab.proxy.hang(methods=f.key, after=f.after),
        reliability.ROLLED_BACK,
    ),
    "driver-connection-dropped": (
        lambda lab, f: lab.proxy.drop(methods=f.key, calls=1),
        None,
    ),
}


def _state(lab: ProxyLab) -> object:
    vms_ = [
        (v.name, tuple((d.name, d.volume_id) for d in v.disks))
        for v in records.list_vms(lab.env.store)
    ]
    snaps = sorted(s.name for s in records.list_snapshots(lab.env.store))
    return vms_, snaps, lab.inventory()


def _source_untouched(lab: ProxyLab) -> None:
    for disk, want in lab.want.items():
        got = lab.export("vm1", disk)
        assert got[: len(want)] == want and not any(got[len(want) :]), f"vm1/{disk} changed"


def run_with_fault(lab: ProxyLab, case: FlowCase, fault: str) -> tuple[str, bool]:
    """Run one flow under one fault; check the aftermath; returns (outcome, via resume)."""
    switch, expected = FAULTS[fault]
    before = _state(lab)
    fired = sum(lab.proxy.injected.values())
    switch(lab, case)
    try:
        case.run(lab)
        outcome = reliability.COMPLETED
    except errors.CsiVmError as err:
        outcome = reliability.ROLLED_BACK
        assert str(err) and "\n" not in str(err), "the error must be one clear line"
    assert sum(lab.proxy.injected.values()) > fired, f"{fault} never fired: nothing was tested"
    via_resume = settle(lab)
    lab.assert_consistent()
    _source_untouched(lab)
    if outcome == reliability.COMPLETED:
        assert case.done(lab)
        case.undo(lab)
    else:
        assert _state(lab) == before, "a rolled-back flow changed the state"
    assert expected in (None, outcome), f"{fault}: {outcome}, expected {expected}"
    return outcome, via_resume


@pytest.mark.parametrize("flow", sorted(FLOWS), ids=sorted(FLOWS))
def test_flow_survives_driver_faults(flow: str, proxy_lab_factory: Callable[..., ProxyLab]) -> None:
    lab = proxy_lab_factory()
    vms.create(lab.env, lab.spec("vm1"))
    snapshots.create(lab.env, vm_name="vm1", name="s1")
    for fault in FAULTS:
        outcome, via_resume = run_with_fault(lab, FLOWS[flow], fault)
        reliability.record(fault, outcome, via_resume=via_resume)


def test_snapshot_never_ready_rolls_back(
    proxy_lab_factory: Callable[..., ProxyLab], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The production wait is minutes; the proxy makes readiness never come anyway.
    monkeypatch.setattr(volume_actions, "_READY_WITHIN", 1.0)
    for without in ((), ("group-snapshot",)):
        lab = proxy_lab_factory(without)
        vms.create(lab.env, lab.spec("vm1"))
        before = _state(lab)
        lab.proxy.never_ready()
        with pytest.raises(errors.OperationFailed, match="ready"):
            snapshots.create(lab.env, vm_name="vm1", name="s2")
        via_resume = settle(lab)
        lab.assert_consistent()
        assert _state(lab) == before
        _source_untouched(lab)
        reliability.record("snapshot-never-ready", reliability.ROLLED_BACK, via_resume=via_resume)
