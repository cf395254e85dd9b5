"""The Kubernetes storage backend: VM disk operations as storage objects.

Native rungs become the objects the cluster's CSI sidecars act on, so the
driver does the work: a PVC whose dataSource is a PVC (csi-clone, through
the external-provisioner), a VolumeSnapshot (csi-snapshot, through the
snapshot controller and external-snapshotter), a PVC whose dataSource is a
VolumeSnapshot (csi-restore), a larger PVC request (csi-expand, through the
external-resizer). The host-copy rung is a blank PVC plus a Job that copies
the disk with `csi-vm image copy`, on the node that holds the source
(`placement`) and within a deadline scaled to the disk. A new claim takes
the volumeMode of the one it comes from (`volumemode`); the Job reads and
writes each end as its mode has it: a Block claim's device, a Filesystem
claim's image file.

Every object carries an ownerReference to the custom resource it serves, so
deleting that resource lets the garbage collector clean up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import math

from capabilities import model
from csi_vm import diskfile, errors
from csi_vm.controller import placement, volumemode
from csi_vm.crd import kinds, names, status
from csi_vm.crd import models as crd
from csi_vm.kube import objects, quantity

Json = objects.Json

#: Where the copy Job sees the two volumes: a Block claim as a device, a
#: Filesystem claim mounted, its disk the image file at the root.
SOURCE_DEVICE = "/dev/csi-vm/source"
TARGET_DEVICE = "/dev/csi-vm/target"
SOURCE_MOUNT = "/csi-vm/source"
TARGET_MOUNT = "/csi-vm/target"
# A failed copy is retried by the Job twice before the operation fails:
# enough for a node that went away, few enough to surface a real error.
_COPY_RETRIES = 2
# The copy Job's deadline (activeDeadlineSeconds), after which Kubernetes
# fails it, so a copy stuck on a volume that never attaches fails the
# operation instead of leaving it Pending for ever. The floor covers
# scheduling, the image pull and attaching two volumes on a busy node; on
# top comes the disk at 20 MiB/s for the copy and its verification
# together, for every attempt. Real disks and networks under VMs are
# several times faster, so only a stuck copy reaches it.
COPY_FLOOR_SECONDS = 600
COPY_BYTES_PER_SECOND = 20 * 2**20


class Progress(enum.Enum):
    PENDING = "Pending"
    READY = "Ready"
    FAILED = "Failed"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Target:
    """Where a new volume goes."""

    name: str
    namespace: str
    size: str
    storage_class: str
    owner: Json
    #: why this object exists in this form (see `explain`)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ReadWriteMany: the class is shared across nodes, so a live migration
    #: publishes the same volume on the target (access modes are immutable)
    shared: bool = False
    #: of a claim: the mode of the claim it comes from, or the disk's spec
    mode: crd.VolumeMode = crd.VolumeMode.BLOCK


#: Annotations on every object the backend makes, as CDI marks a clone that
#: fell back to a host-assisted copy: readable with `kubectl get -o yaml`.
STRATEGY_ANNOTATION = "csi-vm.io/strategy"
FALLBACK_ANNOTATION = "csi-vm.io/fallback-reason"


def explain(operation: str, choice: model.Choice) -> dict[str, str]:
    notes = {STRATEGY_ANNOTATION: f"{operation}/{choice.strategy}"}
    if status.is_fallback(operation, choice):
        notes[FALLBACK_ANNOTATION] = choice.reason
    return notes


def owner_of(obj: Json) -> Json:
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def claim(target: Target, *, data_source: Json | None = None) -> Json:
    """A claim in ``target.mode`` for a disk of ``target.size`` (a Filesystem one asks for more)."""
    spec: Json = {
        "accessModes": ["ReadWriteMany" if target.shared else "ReadWriteOnce"],
        "volumeMode": target.mode.value,
        "resources": {"requests": {"storage": volumemode.request(target.size, target.mode)}},
        "storageClassName": target.storage_class,
    }
    if data_source:
        spec["dataSource"] = data_source
    if target.mode is crd.VolumeMode.FILESYSTEM:
        notes = {**target.annotations, volumemode.DISK_SIZE_ANNOTATION: target.size}
        target = dataclasses.replace(target, annotations=notes)
    return _object("v1", "PersistentVolumeClaim", target, spec)


def claim_source(name: str) -> Json:
    return {"kind": "PersistentVolumeClaim", "name": name}


def snapshot_source(name: str) -> Json:
    return {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name}


def volume_snapshot(target: Target, *, source_claim: str, snapshot_class: str = "") -> Json:
    spec: Json = {"source": {"persistentVolumeClaimName": source_claim}}
    if snapshot_class:
        spec["volumeSnapshotClassName"] = snapshot_class
    return _object("snapshot.storage.k8s.io/v1", "VolumeSnapshot", target, spec)


def copy_deadline(size: str) -> int:
    """Seconds a copy Job of a ``size`` disk may run, retries included (see the constants)."""
    per_attempt = math.ceil(quantity.to_bytes(size) / COPY_BYTES_PER_SECOND)
    return COPY_FLOOR_SECONDS + (_COPY_RETRIES + 1) * per_attempt


@dataclasses.dataclass(frozen=True, kw_only=True)
class _End:
    """One volume of a copy Job as its container sees it."""

    volume: str
    mode: crd.VolumeMode
    device: str
    mount: str
    read_only: bool = False

    @property
    def disk(self) -> str:
        """Where the disk's bytes are: the device, or the image file in the mounted filesystem."""
        if self.mode is crd.VolumeMode.BLOCK:
            return self.device
        return f"{self.mount}/{diskfile.IMAGE_NAME}"


def _volume_fields(ends: list[_End]) -> Json:
    """The container's volumeDevices (Block ends) and volumeMounts (Filesystem ends)."""
    fields: Json = {}
    block = [e for e in ends if e.mode is crd.VolumeMode.BLOCK]
    mounted = [e for e in ends if e.mode is not crd.VolumeMode.BLOCK]
    if block:
        fields["volumeDevices"] = [{"name": e.volume, "devicePath": e.device} for e in block]
    if mounted:
        fields["volumeMounts"] = [
            {"name": e.volume, "mountPath": e.mount, **({"readOnly": True} if e.read_only else {})}
            for e in mounted
        ]
    return fields


def _copy_command(source: _End, dest: _End, *, size: str) -> list[str]:
    """``csi-vm image copy`` from disk to disk, whatever the mode of each end.

    A Filesystem target's image file does not exist yet: the copy creates it
    as long as the disk (``size``), which is more than the source for a copy
    into a larger claim, and never the size of the whole filesystem.
    """
    command = ["csi-vm", "image", "copy", "--verify", "--force"]
    if dest.mode is crd.VolumeMode.FILESYSTEM:
        command += ["--min-size", str(quantity.to_bytes(size))]
    return [*command, source.disk, dest.disk]


def copy_job(
    target: Target,
    *,
    source_claim: str,
    source_mode: crd.VolumeMode,
    image: str,
    where: placement.Placement | None = None,
) -> Json:
    """A Job that copies the disk on ``source_claim`` into the claim ``target.name``.

    ``source_mode``: the source claim's volumeMode (the target's is
    ``target.mode``). ``where``: the node(s) that can reach the source; None
    lets the scheduler choose. No ttlSecondsAfterFinished: the controller
    reads the finished Job's result, and the Job goes with its owner.
    """
    source = _End(
        volume="source", mode=source_mode, device=SOURCE_DEVICE, mount=SOURCE_MOUNT, read_only=True
    )
    dest = _End(volume="target", mode=target.mode, device=TARGET_DEVICE, mount=TARGET_MOUNT)
    container = {
        "name": "copy",
        "image": image,
        "command": _copy_command(source, dest, size=target.size),
        **_volume_fields([source, dest]),
        # Root, not the image's user (65532): a Block claim's device node in
        # the container is root's, and so is the top directory of a freshly
        # made filesystem, where the copy creates the image file.
        "securityContext": {"runAsUser": 0},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "2", "memory": "512Mi"},
        },
    }
    pod = {
        **(where.pod_fields() if where else {}),
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [
            {
                "name": "source",
                "persistentVolumeClaim": {"claimName": source_claim, "readOnly": True},
            },
            {"name": "target", "persistentVolumeClaim": {"claimName": target.name}},
        ],
    }
    job = dataclasses.replace(target, name=f"{target.name}-copy")
    spec = {
        "backoffLimit": _COPY_RETRIES,
        "activeDeadlineSeconds": copy_deadline(target.size),
        "template": {"spec": pod},
    }
    return _object("batch/v1", "Job", job, spec)


def holder_name(claim_name: str) -> str:
    return f"{claim_name}-holder"


def holder_pod(target: Target, *, image: str) -> Json:
    """A Pod that only uses the claim ``target.name``, so a WaitForFirstConsumer class binds it."""
    container = {
        "name": "hold",
        "image": image,
        "command": ["sleep", "3600"],
        "volumeDevices": [{"name": "disk", "devicePath": "/dev/csi-vm/disk"}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
    }
    spec = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "disk", "persistentVolumeClaim": {"claimName": target.name}}],
    }
    pod = dataclasses.replace(target, name=holder_name(target.name))
    return _object("v1", "Pod", pod, spec)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeldDisk:
    name: str
    claim: str
    block: bool


def vm_holder(owner: Json, *, node: str, disks: list[HeldDisk], image: str) -> Json:
    """A Pod on ``node`` that uses every claim of a VM, so the kubelet publishes them there.

    The kubelet only publishes a volume on a node for a pod that uses it; the
    node agent finds each volume under this pod's directory and gives it to
    qemu. Block claims are volumeDevices, filesystem claims volumeMounts.
    """
    container: Json = {
        "name": "hold",
        "image": image,
        # It only has to exist: the kubelet keeps the volumes published while it runs.
        "command": ["sleep", "infinity"],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "1m", "memory": "8Mi"},
            "limits": {"cpu": "10m", "memory": "16Mi"},
        },
    }
    devices = [{"name": d.name, "devicePath": f"/dev/csi-vm/{d.name}"} for d in disks if d.block]
    mounts = [{"name": d.name, "mountPath": f"/csi-vm/{d.name}"} for d in disks if not d.block]
    if devices:
        container["volumeDevices"] = devices
    if mounts:
        container["volumeMounts"] = mounts
    # Pinned to the VM's node through the scheduler, as DaemonSets pin
    # theirs: a pod with spec.nodeName set skips the scheduler, and then a
    # WaitForFirstConsumer claim never binds. The VM is on that node
    # whatever its taints: the holder goes with it.
    where = placement.Placement(selector=placement.on_node(node), any_taint=True)
    spec = {
        **where.pod_fields(),
        "restartPolicy": "Always",
        "containers": [container],
        "volumes": [
            {"name": d.name, "persistentVolumeClaim": {"claimName": d.claim}} for d in disks
        ],
    }
    meta = owner.get("metadata") or {}
    target = Target(
        name=names.holder_pod(str(meta.get("name")), node),
        namespace=str(meta.get("namespace")),
        size="0",
        storage_class="",
        owner=owner_of(owner),
        annotations={"csi-vm.io/node": node},
    )
    return _object("v1", "Pod", target, spec)


def pod(target: Target, spec: Json) -> Json:
    """A Pod named, owned and annotated as ``target`` says."""
    return _object("v1", "Pod", target, spec)


def resize(size: str) -> Json:
    """The PVC patch that asks the external-resizer to grow a volume."""
    return {"spec": {"resources": {"requests": {"storage": size}}}}


def ensure(
    objs: objects.Objects, res: objects.Resource, body: Json, *, foreign_ok: bool = False
) -> Json:
    """Create ``body`` unless an object of that name exists; return what is there.

    Reconciles repeat, so creation must be idempotent. An existing object is
    only taken when its ownerReference names the same owner: a user's PVC
    that happens to have the name of a clone's target must never be written
    over or handed to a VM. ``foreign_ok`` is for claims the user named.
    """
    meta = body["metadata"]
    with contextlib.suppress(errors.AlreadyExists):
        return objs.create(res, body, namespace=meta["namespace"])
    found = objs.get(res, meta["name"], namespace=meta["namespace"])
    if not foreign_ok and not _same_owner(found, body):
        owner = meta["ownerReferences"][0]
        raise errors.AlreadyExists(
            f"{res.plural} {meta['namespace']}/{meta['name']} exists and does not belong to "
            f"{owner['kind']} {owner['name']}",
            hint="choose another target name, or delete that object if it is a leftover",
        )
    return found


def _same_owner(found: Json, body: Json) -> bool:
    want = {ref.get("uid") for ref in body["metadata"].get("ownerReferences") or ()}
    have = {ref.get("uid") for ref in (found.get("metadata") or {}).get("ownerReferences") or ()}
    return bool(want & have)


def claim_progress(pvc: Json, *, first_consumer_binds: bool = False) -> Progress:
    """Where a claim the controller made stands.

    ``first_consumer_binds``: the claim's class is WaitForFirstConsumer and
    nothing of the controller's consumes the claim. Its volume (data source
    included) is then made when a Pod first uses it, the VM's first start:
    a Pending claim is all there is to wait for, as a KubeVirt restore
    counts it. Picking a node to bind it now would be a scheduling decision
    the VM's own Pod makes better.
    """
    phase = (pvc.get("status") or {}).get("phase")
    if phase == "Bound":
        return Progress.READY
    if phase == "Lost":
        return Progress.FAILED
    return Progress.READY if first_consumer_binds else Progress.PENDING


def first_consumer_binds(objs: objects.Objects, storage_class: str) -> bool:
    """True when claims of ``storage_class`` bind only once a Pod uses them."""
    try:
        sc = objs.get(kinds.STORAGE_CLASS, storage_class)
    except errors.NotFound:
        return False  # the claim reports the missing class itself
    return bool(sc.get("volumeBindingMode") == "WaitForFirstConsumer")


def snapshot_progress(snap: Json) -> Progress:
    status = snap.get("status") or {}
    if status.get("error"):
        return Progress.FAILED
    return Progress.READY if status.get("readyToUse") is True else Progress.PENDING


def job_progress(job: Json) -> Progress:
    status = job.get("status") or {}
    if int(status.get("succeeded") or 0) > 0:
        return Progress.READY
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return Progress.FAILED
    return Progress.PENDING


def _object(api_version: str, kind: str, target: Target, spec: Json) -> Json:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": target.name,
            "namespace": target.namespace,
            "labels": {"app.kubernetes.io/managed-by": "csi-vm"},
            "annotations": dict(target.annotations),
            "ownerReferences": [target.owner],
        },
        "spec": spec,
    }


RESOURCE = {
    "PersistentVolumeClaim": kinds.PVC,
    "VolumeSnapshot": kinds.VOLUME_SNAPSHOT,
    "Job": kinds.JOB,
}
