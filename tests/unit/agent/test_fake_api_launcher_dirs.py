"""The node agent's housekeeping of launcher Pods: status.acceleration and run directories.

Fake API server (see conftest): the launcher Pods are made by the
controller's own code, placed and run by the test; their run directories
are a temporary directory. On the real cluster:
tests/integration/cluster/test_launcher_polish.py.
"""

from __future__ import annotations

import dataclasses
import pathlib

import pytest

from csi_vm.agent import launched, launchers, state
from csi_vm.controller import context, launchpod
from csi_vm.crd import kinds, vmpod
from tests.support import fakekube
from tests.support import vmobjects as v

from .conftest import NODE, OTHER, read, vm_on

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

SETTINGS = launchpod.Settings(image="libvirt:test")


@pytest.fixture
def lagent(agent: state.Agent, tmp_path: pathlib.Path) -> state.Agent:
    return dataclasses.replace(agent, launcher_dir=tmp_path / "vms")


def _status(fake: fakekube.FakeKube, name: str, status: dict) -> None:  # type: ignore[type-arg]
    vms = fake.store.resource(kinds.GROUP, kinds.VERSION, kinds.VM.plural)
    assert vms is not None
    fake.store.patch(vms, v.NS, name, {"status": status}, subresource="status")


def _launcher(
    fake: fakekube.FakeKube, ctx: context.Context, name: str, *, node: str, target: bool = False
) -> dict:  # type: ignore[type-arg]
    """The VM's launcher Pod as the controller makes it, on ``node``."""
    pod = launchpod.body(read(ctx, kinds.VM, name), node=node, disks=[], settings=SETTINGS,
                         target=target)  # fmt: skip
    return launchpod.ensure(ctx.objs, pod)


def _run_dir(agent: state.Agent, pod: dict, vm: str) -> pathlib.Path:  # type: ignore[type-arg]
    assert agent.launcher_dir is not None
    path = agent.launcher_dir / vmpod.run_dir_of(pod, v.NS, vm).name
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_acceleration_is_reported_while_the_vm_runs_here_only(
    fake: fakekube.FakeKube, ctx: context.Context, lagent: state.Agent
) -> None:
    fake.add(vm_on("web"))
    pod = _launcher(fake, ctx, "web", node=NODE)
    (_run_dir(lagent, pod, "web") / vmpod.ACCELERATION).write_text(
        "tcg: the node has no /dev/kvm\n"
    )
    _status(fake, "web", {"phase": "Running", "nodeName": NODE})
    launchers.report_acceleration(lagent, read(ctx, kinds.VM, "web"))
    found = read(ctx, kinds.VM, "web")["status"]
    assert found["acceleration"] == {"mode": "tcg", "reason": "the node has no /dev/kvm"}
    # Another node's agent leaves it alone: the VM runs on n1.
    launchers.report_acceleration(
        dataclasses.replace(lagent, node=OTHER), read(ctx, kinds.VM, "web")
    )
    assert read(ctx, kinds.VM, "web")["status"]["acceleration"]["mode"] == "tcg"
    _status(fake, "web", {"phase": "Stopped", "nodeName": None})
    launchers.report_acceleration(lagent, read(ctx, kinds.VM, "web"))
    assert "acceleration" not in read(ctx, kinds.VM, "web")["status"]


def test_kvm_found_by_the_test_guest_says_so(
    fake: fakekube.FakeKube, ctx: context.Context, lagent: state.Agent
) -> None:
    fake.add(vm_on("web"))
    pod = _launcher(fake, ctx, "web", node=NODE)
    (_run_dir(lagent, pod, "web") / vmpod.ACCELERATION).write_text("kvm\n")
    _status(fake, "web", {"phase": "Running", "nodeName": NODE})
    launchers.report_acceleration(lagent, read(ctx, kinds.VM, "web"))
    accel = read(ctx, kinds.VM, "web")["status"]["acceleration"]
    assert accel == {"mode": "kvm", "reason": "a test guest ran under KVM on the node"}


def test_a_run_directory_goes_once_no_launcher_pod_will_use_it(
    fake: fakekube.FakeKube, ctx: context.Context, lagent: state.Agent
) -> None:
    fake.add(vm_on("runs"), vm_on("stopped", running=False), vm_on("moved"), vm_on("gone"))
    runs = _run_dir(lagent, _launcher(fake, ctx, "runs", node=NODE), "runs")
    stopped = _run_dir(lagent, {}, "stopped")  # its Pod ended: its first directory stays
    (stopped / vmpod.CONSOLE).write_text("boot log\n")
    # Migrated to n2: the Pod there has a directory of its own; n1's first one is left.
    moved_first = _run_dir(lagent, {}, "moved")
    moved_there = _run_dir(lagent, _launcher(fake, ctx, "moved", node=OTHER, target=True), "moved")
    gone = _run_dir(lagent, {}, "gone")
    ctx.objs.delete(kinds.VM, "gone", namespace=v.NS)

    removed = launchers.sweep(lagent)

    assert sorted(removed) == sorted([moved_first, gone])
    assert runs.is_dir() and moved_there.is_dir()
    assert (stopped / vmpod.CONSOLE).read_text() == "boot log\n"
    assert launchers.sweep(lagent) == []  # nothing more to do


def test_a_run_directory_with_a_test_kernel_stays_for_a_migrations_target(
    fake: fakekube.FakeKube, lagent: state.Agent
) -> None:
    """Boot files the operator put where a migration's target Pod will run are the operator's."""
    fake.add(vm_on("web"))
    assert lagent.launcher_dir is not None
    target = lagent.launcher_dir / vmpod.target_run_dir(v.NS, "web", OTHER).name
    target.mkdir(parents=True)
    (target / launched.BOOT_KERNEL).write_bytes(b"kernel")
    empty = lagent.launcher_dir / vmpod.target_run_dir(v.NS, "web", NODE).name
    empty.mkdir()

    assert launchers.sweep(lagent) == [empty]
    assert (target / launched.BOOT_KERNEL).read_bytes() == b"kernel"


def test_no_launcher_directory_no_sweep(agent: state.Agent) -> None:
    assert agent.launcher_dir is None
    assert launchers.sweep(agent) == []
