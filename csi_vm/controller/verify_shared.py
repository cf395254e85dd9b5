"""Verify in the cluster that a class's ReadWriteMany Block volumes are shared across nodes.

The CLI probe proves sharing by writing through one node's endpoint and
reading through another's; in a cluster Pods do it. A ReadWriteMany Block
claim of the class gets a Pod that writes a token to it (direct I/O, so no
cache of its node holds the write back) and ends, then a Pod on any other
node that reads the token back: its exit status is the verdict. A volume
that no other node may use (its PersistentVolume's node affinity keeps the
reader off every other node) is not shared, without waiting for the time-out;
a cluster where no other node can run the reader cannot tell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from capabilities import model
from csi_vm import errors
from csi_vm.controller import context, storage
from csi_vm.crd import kinds
from csi_vm.kube import objects

Json = context.Json
F = model.Feature
DEVICE = "/dev/csi-vm/disk"
_OFFSET = 1 << 20
#: the reader's exit status when the token is not there
_NOT_SEEN = 3
_HOSTNAME = "kubernetes.io/hostname"

# Both through a page-aligned buffer (an anonymous mmap), as O_DIRECT needs.
_WRITE = (
    "import mmap, os, sys\n"
    "buf = mmap.mmap(-1, 4096); buf.write(sys.argv[2].encode())\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)\n"
    f"os.pwrite(fd, buf, {_OFFSET}); os.fsync(fd)\n"
)
_READ = (
    "import mmap, os, sys\n"
    "buf = mmap.mmap(-1, 4096); token = sys.argv[2].encode()\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)\n"
    f"os.preadv(fd, [buf], {_OFFSET})\n"
    f"sys.exit(0 if buf[: len(token)] == token else {_NOT_SEEN})\n"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Probe:
    """What the verification of one class hands over (`csi_vm.controller.verify.Probe`)."""

    claim: storage.Target
    image: str

    @property
    def writer(self) -> str:
        return f"{self.claim.name}-write"

    @property
    def reader(self) -> str:
        return f"{self.claim.name}-read"

    def made(self) -> list[tuple[objects.Resource, str]]:
        """Every object this check makes, Pods first (they hold the claim)."""
        return [(kinds.POD, self.writer), (kinds.POD, self.reader), (kinds.PVC, self.claim.name)]


Late = Callable[[str], model.FeatureResult | None]


def result(ctx: context.Context, probe: Probe, *, late: Late) -> model.FeatureResult | None:
    """One step of the check; None while it goes on. ``late``: the time-out's verdict."""
    claim = dataclasses.replace(probe.claim, shared=True)
    pvc = storage.ensure(ctx.objs, kinds.PVC, storage.claim(claim))
    token = f"csi-vm-shared-{pvc['metadata'].get('uid', claim.name)}"
    writer = storage.ensure(ctx.objs, kinds.POD, _pod(probe, probe.writer, _WRITE, token))
    phase = _phase(writer)
    if phase == "Failed":
        return _verdict(False, "the Pod writing the ReadWriteMany Block claim failed")
    if phase != "Succeeded":
        return late("ReadWriteMany Block claim not written")
    first = str(writer["spec"].get("nodeName") or "")
    reader = storage.ensure(
        ctx.objs, kinds.POD, _pod(probe, probe.reader, _READ, token, avoid=first)
    )
    second = str(reader["spec"].get("nodeName") or "")
    match _phase(reader):
        case "Succeeded":
            return _verdict(True, f"Block volume written on {first} and read back on {second}")
        case "Failed":
            return _verdict(False, f"Block volume written on {first} but not seen on {second}")
    if why := _unschedulable(reader):
        return _nowhere_else(ctx, pvc, first=first, why=why)
    return late(f"ReadWriteMany Block claim written on {first}, not read on another node")


def _verdict(shared: bool | None, evidence: str) -> model.FeatureResult:
    return model.FeatureResult(verified=shared, evidence=evidence[:256])


def _phase(pod: Json) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _unschedulable(pod: Json) -> str:
    """The scheduler's message when it found no node for ``pod``, else ""."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return str(cond.get("message") or "no node fits")
    return ""


def _nowhere_else(ctx: context.Context, pvc: Json, *, first: str, why: str) -> model.FeatureResult:
    """No other node runs the reader: a volume pinned to nodes is not shared; else unknown."""
    volume = str((pvc.get("spec") or {}).get("volumeName") or "")
    try:
        pv = ctx.objs.get(kinds.PV, volume) if volume else {}
    except errors.NotFound:
        pv = {}
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required")
    if required:
        return _verdict(
            False, f"written on {first}; the PersistentVolume's node affinity keeps it there"
        )
    return _verdict(None, f"not verified: no node but {first} can run a reader ({why})")


def _pod(probe: Probe, name: str, script: str, token: str, *, avoid: str = "") -> Json:
    container = {
        "name": "io",
        "image": probe.image,
        "command": ["python3", "-c", script, DEVICE, token],
        "volumeDevices": [{"name": "disk", "devicePath": DEVICE}],
        # Root, not the image's user: a Block claim's device node is root's.
        "securityContext": {"runAsUser": 0},
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
    }
    spec: Json = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": [{"name": "disk", "persistentVolumeClaim": {"claimName": probe.claim.name}}],
    }
    if avoid:
        spec["affinity"] = _elsewhere(avoid)
    target = dataclasses.replace(probe.claim, name=name)
    return storage.pod(target, spec)


def _elsewhere(node: str) -> Json:
    expr = {"key": _HOSTNAME, "operator": "NotIn", "values": [node]}
    terms = {"nodeSelectorTerms": [{"matchExpressions": [expr]}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}}
