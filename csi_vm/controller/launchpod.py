"""A running VM's launcher Pod: sized from the VM, holding its claims, running its qemu.

With ``--vm-pods=launcher`` the controller makes one Pod per running VM on
the VM's node (`csi_vm.crd.vmpod` has its name and layout) instead of the
holder Pod, and deletes it when ``spec.running`` turns false:

- it requests the VM's memory plus a fixed overhead (libvirtd, qemu's own
  memory and, under TCG, its translation cache) and the same as its memory
  limit, so the scheduler places a VM only where it fits and the guest
  cannot take more than was asked for; CPU: ``vcpu_millis`` per vCPU
  (a whole CPU by default; a smaller share overcommits, as KubeVirt's CPU
  allocation ratio does);
- its container uses every claim of the VM (volumeDevices for Block,
  volumeMounts for Filesystem), so the kubelet publishes them there;
- it runs libvirtd with its run directory on the node
  (`csi_vm.crd.vmpod.host_dir`), where the node agent opens its socket to
  define and start the domain. The Pod is its own: deleting or upgrading
  the node DaemonSet leaves it and its guest running;
- on deletion (the VM stopped or deleted) the container asks every guest
  to power off and gives it ``stop_grace_s`` before killing it; the
  Pod's termination grace period covers that wait.
"""

from __future__ import annotations

import dataclasses

from csi_vm import errors
from csi_vm.controller import placement, storage
from csi_vm.crd import kinds, vmpod
from csi_vm.crd import models as crd
from csi_vm.kube import objects, quantity

Json = objects.Json
_MIB = 1 << 20
#: what the Pod's deletion waits on top of the guest's power-off: libvirtd's exit
_EXIT_MARGIN_S = 15

# The container's program. First it finds out whether KVM works on the node
# (ACCEL=auto): a 64 KiB firmware whose reset vector writes 1 to the
# isa-debug-exit port, which ends qemu with status 3, run under KVM. Any
# other end, or a warning from qemu (a CPU feature the host does not give
# KVM guests), means TCG; the finding and why go to the run directory,
# where the node agent reads them (`csi_vm.crd.vmpod.read_acceleration`).
# On SIGTERM (the Pod deleted): ask each guest to power off, wait for up to
# the grace period, destroy what still runs, then end libvirtd. `wait`
# returns when the trap runs, so it waits twice.
_SCRIPT = """\
set -u
mkdir -p /var/log/libvirt /var/lib/libvirt /var/cache/libvirt
accel() {
  case "$ACCEL" in tcg|kvm) echo "$ACCEL: set by --launcher-acceleration"; return;; esac
  if [ ! -c /dev/kvm ]; then echo "tcg: the node has no /dev/kvm"; return; fi
  fw=/tmp/kvm-test.fd
  { head -c 65520 /dev/zero; printf '\\260\\001\\346\\364\\364'; head -c 11 /dev/zero; } > "$fw"
  out=$(timeout 20 qemu-system-x86_64 -accel kvm -machine pc -m 16 -bios "$fw" \\
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 -display none -nodefaults \\
    -monitor none -serial none 2>&1)
  code=$?
  if [ "$code" -eq 3 ] && [ -z "$out" ]; then echo kvm; return; fi
  echo "tcg: a KVM test guest ended with status $code $(echo "$out" | head -n 1)"
}
accel > "$RUN_DIR/acceleration.new" && mv "$RUN_DIR/acceleration.new" "$RUN_DIR/acceleration"
listen=""
if [ "$TLS" = 1 ]; then
  # The node agent writes this Pod's key and certificates (its IP in them)
  # into the run directory; libvirtd and qemu find them at their defaults.
  # Its own uid in "ready": a certificate an earlier Pod left there names another IP.
  t="$RUN_DIR/tls"
  until [ "$(cat "$t/ready" 2>/dev/null)" = "$POD_UID" ]; do sleep 1; done
  install -D -m 0644 "$t/ca.pem" /etc/pki/CA/cacert.pem
  for who in server client; do
    install -D -m 0644 "$t/cert.pem" "/etc/pki/libvirt/${who}cert.pem"
    install -D -m 0600 "$t/key.pem" "/etc/pki/libvirt/private/${who}key.pem"
    install -D -m 0644 "$t/cert.pem" "/etc/pki/qemu/$who-cert.pem"
    install -D -m 0600 "$t/key.pem" "/etc/pki/qemu/$who-key.pem"
  done
  install -D -m 0644 "$t/ca.pem" /etc/pki/qemu/ca-cert.pem
  # TLS only, client certificates required and checked against the CA;
  # qemu's migration and NBD streams check the peer's certificate too.
  printf 'listen_tls = 1\nlisten_tcp = 0\ntls_no_verify_certificate = 0\n' > /tmp/libvirtd.conf
  grep -q '^default_tls_x509_verify' /etc/libvirt/qemu.conf ||
    echo 'default_tls_x509_verify = 1' >> /etc/libvirt/qemu.conf
  listen="--listen --config /tmp/libvirtd.conf"
fi
virtlogd -d
# shellcheck disable=SC2086
libvirtd $listen &
daemon=$!
stop() {
  for dom in $(virsh list --name); do virsh shutdown "$dom" >/dev/null 2>&1; done
  timeout "$GRACE" sh -c 'while [ -n "$(virsh list --name)" ]; do sleep 1; done'
  for dom in $(virsh list --name); do virsh destroy "$dom" >/dev/null 2>&1; done
  kill "$daemon"
}
trap stop TERM
wait "$daemon"
wait "$daemon"
"""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    #: an image with libvirtd, virtlogd, virsh and qemu (the chart's libvirt image)
    image: str
    #: memory the Pod asks for on top of the guest's
    overhead: str = "256Mi"
    #: CPU requested per vCPU, in thousandths of a CPU
    vcpu_millis: int = 1000
    #: how long a guest gets to power off when its Pod is deleted
    stop_grace_s: int = 30
    #: "auto" (KVM when a test guest runs under it, else TCG), "kvm" or "tcg"
    acceleration: str = "auto"
    #: libvirtd listens with TLS (client certificates required) for migrations;
    #: the node agent writes each Pod's certificates (`csi_vm.agent.podtls`)
    tls: bool = False


def body(
    vm: Json, *, node: str, disks: list[storage.HeldDisk], settings: Settings, target: bool = False
) -> Json:
    """The launcher Pod of ``vm`` on ``node``, using the claims ``disks``.

    ``target``: a live migration's target Pod (`csi_vm.crd.vmpod.target_pod_name`),
    with a run directory of its own; its libvirtd waits for the guest to come in.
    """
    meta, spec = crd.meta(vm), crd.spec(vm, crd.VMSpec)
    name = vmpod.target_pod_name(meta.name, node) if target else vmpod.pod_name(meta.name)
    run_dir = vmpod.host_dir(meta.namespace, meta.name)
    if target:
        run_dir = vmpod.target_run_dir(meta.namespace, meta.name, node)
    container: Json = {
        "name": "launcher",
        "image": settings.image,
        "command": ["sh", "-c", _SCRIPT],
        "env": [
            {"name": "GRACE", "value": str(settings.stop_grace_s)},
            {"name": "ACCEL", "value": settings.acceleration},
            {"name": "TLS", "value": "1" if settings.tls else "0"},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "RUN_DIR", "value": str(vmpod.RUN_DIR)},
            {"name": "LIBVIRT_DEFAULT_URI", "value": "qemu:///system"},
        ],
        # libvirtd runs qemu in cgroups and namespaces of its own and opens
        # the claims' raw devices: as the node's libvirt container, privileged.
        "securityContext": {"privileged": True},
        "resources": _resources(spec, settings),
        "volumeMounts": [{"name": "run", "mountPath": str(vmpod.RUN_DIR)}],
    }
    if settings.tls:
        container["ports"] = [{"name": "libvirt-tls", "containerPort": vmpod.TLS_PORT}]
    devices = [{"name": d.name, "devicePath": str(vmpod.device(d.name))} for d in disks if d.block]
    if devices:
        container["volumeDevices"] = devices
    container["volumeMounts"] += [
        {"name": d.name, "mountPath": str(vmpod.mount(d.name))} for d in disks if not d.block
    ]
    volumes: list[Json] = [
        {"name": "run", "hostPath": {"path": str(run_dir), "type": "DirectoryOrCreate"}},
        *({"name": d.name, "persistentVolumeClaim": {"claimName": d.claim}} for d in disks),
    ]
    # Through the scheduler, not spec.nodeName: a WaitForFirstConsumer claim
    # binds only for a Pod the scheduler placed; the VM's node whatever its taints.
    where = placement.Placement(selector=placement.on_node(node), any_taint=True)
    pod_spec = {
        **where.pod_fields(),
        # libvirtd that ends takes its guest along; a new one in the same Pod
        # lets the agent start the guest again, as after a crash.
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": settings.stop_grace_s + _EXIT_MARGIN_S,
        # The guest's Pod never talks to the API server.
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": volumes,
    }
    annotations = {vmpod.NODE_ANNOTATION: node, vmpod.RUN_DIR_ANNOTATION: str(run_dir)}
    made = storage.Target(
        name=name, namespace=meta.namespace, size="0", storage_class="",
        owner=storage.owner_of(vm), annotations=annotations,
    )  # fmt: skip
    pod = storage.pod(made, pod_spec)
    pod["metadata"]["labels"].update(
        {vmpod.COMPONENT_LABEL: vmpod.COMPONENT, vmpod.LABEL: meta.name}
    )
    return pod


def _resources(spec: crd.VMSpec, settings: Settings) -> Json:
    memory = quantity.to_bytes(spec.memory) + quantity.to_bytes(settings.overhead)
    mem = f"{-(-memory // _MIB)}Mi"
    return {
        "requests": {"cpu": f"{spec.cpus * settings.vcpu_millis}m", "memory": mem},
        "limits": {"memory": mem},
    }


def ensure(objs: objects.Objects, pod: Json) -> Json:
    """Create the launcher Pod unless it exists; the one there."""
    return storage.ensure(objs, kinds.POD, pod)


def remove(objs: objects.Objects, vm: Json, *, node: str) -> None:
    """Delete the VM's launcher Pod on ``node``, if any: its guest powers off first (`_SCRIPT`).

    The first Pod's name, and the name a migration to ``node`` gave it.
    """
    meta = crd.meta(vm)
    for name in vmpod.pod_names(meta.name, node):
        objs.delete(kinds.POD, name, namespace=meta.namespace)


def on_node(objs: objects.Objects, vm: Json, node: str) -> Json | None:
    """The VM's launcher Pod on ``node``: the first one, or a migration's target there."""
    meta = crd.meta(vm)
    for name in vmpod.pod_names(meta.name, node):
        try:
            pod = objs.get(kinds.POD, name, namespace=meta.namespace)
        except errors.NotFound:
            continue
        if vmpod.node_of(pod) == node:
            return pod
    return None
