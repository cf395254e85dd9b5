"""Launcher Pods seen from their node: the VM's acceleration, and run directories left behind.

``status.acceleration`` says what the guest's qemu runs with, ``kvm`` or
``tcg``, and why, as the launcher Pod found it on its node
(`csi_vm.crd.vmpod.read_acceleration`). The agent of the node the VM runs on
sets it while the VM is Running there and removes it once the VM stops, so
it never describes a guest that is gone.

Each launcher Pod has a run directory on its node (`csi_vm.crd.vmpod`):
libvirt's socket, the guest's console log, the KVM finding and the TLS
files. The agent removes a directory once no launcher Pod uses it and none
will: its VM was deleted, or it runs in a Pod with another directory (it
migrated). A stopped VM keeps its first directory, console log included,
for its next start. A Pod that exists, even one being deleted, keeps its
directory: the kubelet makes a Pod's directory only when it starts it,
seconds after the Pod was created, so a directory never goes from under a
Pod that the listing missed.
"""

from __future__ import annotations

import logging
import pathlib
import shutil

from csi_vm import errors
from csi_vm.agent import launched, state
from csi_vm.crd import kinds, vmpod
from csi_vm.crd import models as crd

log = logging.getLogger("csi_vm.agent")

Json = state.Json
LAUNCHERS = f"{vmpod.COMPONENT_LABEL}={vmpod.COMPONENT}"
#: the reason when the launcher gave none: its test guest ran under KVM
_KVM_WORKS = "a test guest ran under KVM on the node"


def report_acceleration(agent: state.Agent, vm: Json) -> None:
    """Bring ``status.acceleration`` in line with the launcher Pod the VM runs in here."""
    if agent.launcher_dir is None:
        return
    st = vm.get("status") or {}
    node = st.get("nodeName")
    if node not in (agent.node, None):
        return  # another node's agent reports it
    wanted = None
    if node == agent.node and st.get("phase") == "Running":
        wanted = _acceleration(agent, vm, agent.launcher_dir)
    if st.get("acceleration") != wanted:
        state.write(agent, kinds.VM, vm, fields={"acceleration": wanted}, conditions=[])


def _acceleration(agent: state.Agent, vm: Json, launchers: pathlib.Path) -> Json | None:
    meta = crd.meta(vm)
    for name in vmpod.pod_names(meta.name, agent.node):
        try:
            pod = agent.objs.get(kinds.POD, name, namespace=meta.namespace)
        except errors.NotFound:
            continue
        if vmpod.node_of(pod) != agent.node:
            continue
        run_dir = launchers / vmpod.run_dir_of(pod, meta.namespace, meta.name).name
        if found := vmpod.read_acceleration(run_dir):
            return {"mode": found.accel.value, "reason": found.why or _KVM_WORKS}
    return None


def sweep(agent: state.Agent) -> list[pathlib.Path]:
    """Remove the run directories no launcher Pod uses or will use; the ones removed."""
    if agent.launcher_dir is None or not agent.launcher_dir.is_dir():
        return []
    # Listed before the Pods and VMs: a directory made after this is not judged.
    present = sorted(p for p in agent.launcher_dir.iterdir() if p.is_dir())
    if not present:
        return []
    pods, _ = agent.objs.list(kinds.POD, selector=LAUNCHERS)
    vms, _ = agent.objs.list(kinds.VM)
    keep = wanted_dirs(pods, vms)
    removed = []
    for path in present:
        # A kernel put there for a test or demo boot is the operator's, who
        # removes it: a migration's target Pod finds it in its directory.
        if path.name in keep or (path / launched.BOOT_KERNEL).exists():
            continue
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed the run directory %s: no launcher Pod uses it any more", path)
        removed.append(path)
    return removed


def wanted_dirs(pods: list[Json], vms: list[Json]) -> set[str]:
    """Names of the run directories still wanted: every launcher Pod's, a Pod-less VM's first."""
    names: set[str] = set()
    housed: set[tuple[str, str]] = set()
    for pod in pods:
        meta = pod.get("metadata") or {}
        vm = str((meta.get("labels") or {}).get(vmpod.LABEL) or "")
        namespace = str(meta.get("namespace") or "")
        if not vm:
            continue
        names.add(vmpod.run_dir_of(pod, namespace, vm).name)
        housed.add((namespace, vm))
    for vm_obj in vms:
        meta = crd.meta(vm_obj)
        if (meta.namespace, meta.name) not in housed:
            names.add(vmpod.host_dir(meta.namespace, meta.name).name)
    return names
