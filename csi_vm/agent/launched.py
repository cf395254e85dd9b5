"""A CsiVM whose guest runs in its own launcher Pod (``--vm-pods=launcher``).

The controller makes the Pod (`csi_vm.controller.launchpod`); the agent of
the Pod's node defines and starts the domain through the libvirt socket the
Pod keeps in its directory on the node (`csi_vm.crd.vmpod`), with the disks
at the paths the Pod's container has them. Nothing the agent does ties the
guest to the agent: a restarted or upgraded agent finds the domain running
and goes on reporting it. Stopping is the Pod's: the controller deletes it
and its container powers the guest off; the agent reports Stopped once the
Pod is gone.
"""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import Sequence
from xml.etree import ElementTree

from csi_vm import errors
from csi_vm.agent import guest_copy, guest_resize, podtls, state
from csi_vm.crd import kinds, rules, status, vmpod
from csi_vm.crd import models as crd
from csi_vm.flows import vmrun
from csi_vm.kube import quantity
from launcher import domain, libvirt_conn

log = logging.getLogger("csi_vm.agent")

Json = state.Json
RUNNING = "Running"
#: how long a launcher's libvirtd may take to start once its certificate is there
_STARTS_S = 30.0
_MIB = 1 << 20
#: a kernel, initramfs and command line in the launcher's run directory: when
#: put there (tests, demos), the guest boots them instead of its first disk
BOOT_KERNEL, BOOT_INITRD, BOOT_CMDLINE = "boot-kernel", "boot-initrd", "boot-cmdline"


def run(agent: state.Agent, vm: Json, *, launchers: pathlib.Path) -> None:
    """Start the guest in the VM's launcher Pod once the Pod runs; report where it runs.

    ``launchers``: the node's directory of launcher run directories.
    """
    meta = crd.meta(vm)
    dom = state.domain_name(meta)
    pod = pod_here(agent, meta)
    name = pod["metadata"]["name"] if pod else vmpod.pod_name(meta.name)
    run_dir = launchers / vmpod.run_dir_of(pod or {}, meta.namespace, meta.name).name
    accel = vmpod.read_acceleration(run_dir)
    why = _not_ready(agent, pod, name)
    if not why and accel is None:
        why = f"launcher Pod {name} has not tested the node's KVM yet"
    if why or accel is None or pod is None:
        _report(agent, vm, reason="LauncherNotReady", message=why, ok=False, fields={})
        return
    where = f"launcher Pod {name} on {agent.node} ({accel.label})"
    try:
        # A certificate made now lets the Pod's libvirtd start: wait for it.
        wait_s = _STARTS_S if certify(agent, pod, run_dir) else 0.0
        with libvirt_conn.Connection.open(agent.launcher_uri(run_dir), wait_s=wait_s) as conn:
            if _active(conn, dom):
                vm = _copy(agent, conn, vm, dom=dom, run_dir=run_dir)
                grown = _grow(agent, conn, vm, dom=dom, pod=pod)
                _running(agent, vm, message=f"runs in {where}", extra=grown)
                return
            vm = state.write(
                agent, kinds.VM, vm, fields={"phase": "Starting", "nodeName": agent.node},
                conditions=[],
            )  # fmt: skip
            _start(agent, conn, vm, dom, accel=accel, boot=_boot(agent, run_dir))
    except errors.Unreachable as err:
        _report(agent, vm, reason="LauncherNotReady", message=str(err), ok=False, fields={})
        return
    except errors.CsiVmError as err:
        message = f"start in {where} failed: {err}"
        fields = {"phase": "Failed", "message": message}
        _report(agent, vm, reason="StartFailed", message=message, ok=False, fields=fields)
        return
    message = f"started in {where}"
    agent.events.record(vm, reason="Started", message=message)
    _running(agent, vm, message=message)


def stop(agent: state.Agent, vm: Json) -> None:
    """``running: false``: the controller deletes the Pod, which powers the guest off."""
    meta = crd.meta(vm)
    if (pod := pod_here(agent, meta)) is not None:
        message = f"launcher Pod {pod['metadata']['name']} powers the guest off and ends"
        stopping: Json = {"phase": "Stopping"}
        _report(agent, vm, reason="Stopping", message=message, ok=False, fields=stopping)
        return
    stopped: Json = {"phase": "Stopped", "nodeName": None, "message": None}
    _report(agent, vm, reason="Stopped", message="spec.running is false", ok=False, fields=stopped)


def pod_here(agent: state.Agent, meta: crd.Meta) -> Json | None:
    """The VM's launcher Pod made for this node: the first one, or a migration's target."""
    for name in vmpod.pod_names(meta.name, agent.node):
        try:
            pod = agent.objs.get(kinds.POD, name, namespace=meta.namespace)
        except errors.NotFound:
            continue
        if vmpod.node_of(pod) == agent.node:
            return pod
    return None


def certify(agent: state.Agent, pod: Json, run_dir: pathlib.Path) -> bool:
    """The Pod's TLS certificate in its run directory, once the Pod has its IP; True if made now."""
    ip = (pod.get("status") or {}).get("podIP")
    if agent.ca_dir is None or not ip:
        return False
    meta = pod["metadata"]
    if not podtls.ensure(agent.ca_dir, run_dir, uid=meta["uid"], ip=ip, name=meta["name"]):
        return False
    log.info("launcher Pod %s/%s: TLS certificate for %s", meta["namespace"], meta["name"], ip)
    return True


def _not_ready(agent: state.Agent, pod: Json | None, name: str) -> str:
    """Why the guest cannot start in ``pod`` now, or ""."""
    if pod is None:
        return f"no launcher Pod {name} yet: the controller makes it"
    placed = (pod.get("spec") or {}).get("nodeName")
    if placed != agent.node:
        return f"launcher Pod {name} is on node {placed or '(none yet)'}, not {agent.node}"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return f"launcher Pod {name} is being deleted"
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase != "Running":
        # The kubelet runs it only once every volume is published.
        return f"launcher Pod {name} is {phase}, not Running yet"
    return ""


def _active(conn: libvirt_conn.Connection, dom: str) -> bool:
    try:
        return conn.status(dom).active
    except errors.NotFound:
        return False


def _boot(agent: state.Agent, run_dir: pathlib.Path) -> domain.DirectBoot | None:
    """A kernel and initramfs put into the launcher's run directory, else the agent's own.

    The launcher's qemu sees no file of the node but that directory (as
    `vmpod.RUN_DIR`): a guest booted from a kernel of its own (tests, demos)
    has it placed there before the VM starts, beside its command line.
    """
    kernel, initrd = run_dir / BOOT_KERNEL, run_dir / BOOT_INITRD
    if not (kernel.is_file() and initrd.is_file()):
        return agent.boot
    cmdline = run_dir / BOOT_CMDLINE
    return domain.DirectBoot(
        kernel=vmpod.RUN_DIR / BOOT_KERNEL,
        initramfs=vmpod.RUN_DIR / BOOT_INITRD,
        cmdline=cmdline.read_text().strip() if cmdline.is_file() else "",
    )


def _start(
    agent: state.Agent, conn: libvirt_conn.Connection, vm: Json, dom: str, *,
    accel: vmpod.Acceleration, boot: domain.DirectBoot | None,
) -> None:  # fmt: skip
    meta, spec = crd.meta(vm), crd.spec(vm, crd.VMSpec)
    if not meta.uid:
        raise errors.InvalidInput(f"CsiVM {meta.name} has no uid")
    found = tuple(_disk(agent, meta, disk, index=i) for i, disk in enumerate(spec.disks))
    vm_spec = domain.VmSpec(
        name=dom, uuid=state.vm_uuid(meta.uid), disks=found,
        console_log=vmpod.RUN_DIR / vmpod.CONSOLE, vcpus=spec.cpus,
        memory_mib=max(16, quantity.to_bytes(spec.memory) // _MIB), boot=boot,
    )  # fmt: skip
    conn.define(_with_accel(domain.to_xml(vm_spec), accel.accel.domain_type))
    try:
        conn.start(dom)
    except errors.CsiVmError:
        with contextlib.suppress(errors.CsiVmError):
            conn.undefine(dom)
        raise
    log.info("started %s in its launcher Pod (%s)", dom, accel.label)


def _disk(agent: state.Agent, meta: crd.Meta, disk: crd.Disk, *, index: int) -> domain.Disk:
    """The disk at the launcher container's path, in the mode of its claim."""
    claim = agent.objs.get(kinds.PVC, disk.claim_of(meta.name), namespace=meta.namespace)
    target = vmrun.target(index)
    if rules.volume_mode(claim) is crd.VolumeMode.BLOCK:
        return domain.Disk(
            source=vmpod.device(disk.name), target=target, kind=domain.DiskKind.BLOCK
        )
    return domain.Disk(source=vmpod.image(disk.name), target=target, kind=domain.DiskKind.FILE)


def _with_accel(xml: str, domain_type: str) -> str:
    """``xml`` with the domain type of this node's acceleration (`launcher.domain` writes TCG)."""
    root = ElementTree.fromstring(xml)  # noqa: S314 - domain.to_xml's own output
    root.set("type", domain_type)
    return ElementTree.tostring(root, encoding="unicode")


def _grow(
    agent: state.Agent, conn: libvirt_conn.Connection, vm: Json, *, dom: str, pod: Json
) -> list[Json]:
    """Disks grown under the running guest (`guest_resize`); a failure waits for the next pass."""
    try:
        return guest_resize.follow(agent, conn, vm, dom=dom, pod=pod)
    except errors.CsiVmError as err:
        log.warning("%s: telling the guest a disk grew failed: %s", dom, err)
        return []


def _copy(
    agent: state.Agent, conn: libvirt_conn.Connection, vm: Json, *, dom: str, run_dir: pathlib.Path
) -> Json:
    """Disks copied into larger claims under the running guest (`guest_copy`)."""
    try:
        return guest_copy.follow(agent, conn, vm, dom=dom, run_dir=run_dir)
    except errors.CsiVmError as err:
        log.warning("%s: a block copy into a larger claim: %s", dom, err)
        return vm


def _running(agent: state.Agent, vm: Json, *, message: str, extra: Sequence[Json] = ()) -> None:
    fields = {"phase": "Running", "nodeName": agent.node, "message": None}
    _report(agent, vm, reason="Running", message=message, ok=True, fields=fields, extra=extra)


def _report(
    agent: state.Agent, vm: Json, *, reason: str, message: str, ok: bool, fields: Json,
    extra: Sequence[Json] = (),
) -> None:  # fmt: skip
    cond = status.current(vm, RUNNING)
    if not (ok and cond.get("status") == "True"):  # a True one says how it got here: keep it
        cond = state.tell(agent, vm, kind=RUNNING, reason=reason, message=message, ok=ok)
    state.write(agent, kinds.VM, vm, fields=fields, conditions=[cond, *extra])
