"""Reading and writing VM disks on the cluster through Pods, for the end-to-end tests.

A disk's content is checked byte for byte by its SHA-256, computed inside
a Pod that uses the claim, the way a workload would see it.
"""

from __future__ import annotations

import hashlib
import pathlib
import random
import uuid

from tests.support.cluster import kubectl, lab

MiB = 1 << 20
DISK_MIB = 64
DISK = f"{DISK_MIB}Mi"
GROWN_MIB = 96
GROWN = f"{GROWN_MIB}Mi"
DEVICE = "/dev/xvda"

# The image a test imports: random data at the start and in the middle of a
# disk-sized raw image, zeros elsewhere, so sparse copies are exercised too.
# The same code runs in the import Pod and here, so the expected digest is
# computed without moving the image around.
_MAKE_IMAGE = f"""
import random
r = random.Random(11)
data = bytearray({DISK_MIB * MiB})
data[0:{4 * MiB}] = r.randbytes({4 * MiB})
data[{40 * MiB}:{41 * MiB}] = r.randbytes({MiB})
"""


def image_bytes() -> bytes:
    scope: dict[str, object] = {"random": random}
    exec(_MAKE_IMAGE, scope)
    return bytes(scope["data"])  # type: ignore[arg-type]


def expected_digest(size_mib: int = DISK_MIB) -> str:
    """SHA-256 of the first ``size_mib`` MiB after an import (zeros past the image)."""
    data = image_bytes()
    return hashlib.sha256(data + bytes(size_mib * MiB - len(data))).hexdigest()


#: where `run_pod` mounts its ``host_dir``, read-only
HOST_DIR = "/host"


def _pod(
    kube: kubectl.Kube,
    claim: str,
    command: list[str],
    env: dict[str, str],
    *,
    node: str | None,
    host_dir: pathlib.Path | None,
) -> kubectl.Json:
    image = f"csi-vm.local/csi-vm:{lab.project_image_tag(kube.where)}"
    container: kubectl.Json = {
        "name": "disk",
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeDevices": [{"name": "disk", "devicePath": DEVICE}],
    }
    volumes: list[kubectl.Json] = [{"name": "disk", "persistentVolumeClaim": {"claimName": claim}}]
    if host_dir is not None:
        container["volumeMounts"] = [{"name": "host", "mountPath": HOST_DIR, "readOnly": True}]
        volumes.append({"name": "host", "hostPath": {"path": str(host_dir), "type": "Directory"}})
    spec: kubectl.Json = {"restartPolicy": "Never", "containers": [container], "volumes": volumes}
    if node is not None:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"disk-{uuid.uuid4().hex[:8]}"},
        "spec": spec,
    }


def run_pod(
    kube: kubectl.Kube,
    namespace: str,
    claim: str,
    command: list[str],
    env: dict[str, str] | None = None,
    *,
    node: str | None = None,
    host_dir: pathlib.Path | None = None,
) -> str:
    """Run a Pod on ``claim`` to completion and return its output.

    ``node``: the node it must run on; ``host_dir``: a directory of the
    machine it sees at `HOST_DIR`.
    """
    pod = _pod(kube, claim, command, env or {}, node=node, host_dir=host_dir)
    name = str(pod["metadata"]["name"])  # type: ignore[index]
    kube.apply(pod, namespace=namespace)

    def done() -> bool:
        phase = kube.get("pod", name, namespace=namespace).get("status", {}).get("phase")
        if phase == "Failed":
            raise AssertionError(
                f"pod {name} on {claim} failed:\n{kube.logs('-n', namespace, name)}"
            )
        return phase == "Succeeded"

    kube.wait_for(
        f"pod {name} on claim {claim}",
        done,
        timeout=300,
        explain=lambda: kube.describe("-n", namespace, "pod", name),
    )
    out = kube.logs("-n", namespace, name)
    kube.run("-n", namespace, "delete", "pod", name, "--wait=true")
    return out


def import_image(kube: kubectl.Kube, namespace: str, claim: str) -> None:
    """Import a qcow2 image into the claim with csi-vm's copy engine."""
    script = _MAKE_IMAGE + "open('/tmp/disk.raw', 'wb').write(data)\n"
    shell = (
        'python3 -c "$MAKE_IMAGE" && qemu-img convert -f raw -O qcow2 /tmp/disk.raw /tmp/disk.qcow2'
        f" && csi-vm image copy --force --verify /tmp/disk.qcow2 {DEVICE}"
    )
    run_pod(kube, namespace, claim, ["sh", "-c", shell], env={"MAKE_IMAGE": script})


def read_disk(
    kube: kubectl.Kube, namespace: str, claim: str, *, size_mib: int = DISK_MIB
) -> tuple[int, str]:
    """The device size in bytes and the SHA-256 of its first ``size_mib`` MiB."""
    out = run_pod(
        kube,
        namespace,
        claim,
        [
            "sh",
            "-c",
            f"blockdev --getsize64 {DEVICE} && head -c {size_mib * MiB} {DEVICE} | sha256sum",
        ],
    )
    lines = out.split()
    return int(lines[0]), lines[1]


def block_claim(name: str, storage_class: str, *, access: str = "ReadWriteOnce") -> kubectl.Json:
    """A Block claim of a disk's size."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": [access],
            "volumeMode": "Block",
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": DISK}},
        },
    }


def seed(kube: kubectl.Kube, namespace: str, claim: str, image: pathlib.Path, *, node: str) -> None:
    """Write the raw ``image`` onto ``claim`` from a Pod on ``node``, as a workload would."""
    command = ["dd", f"if={HOST_DIR}/{image.name}", f"of={DEVICE}", "bs=1M", "conv=fsync",
               "status=none"]  # fmt: skip
    run_pod(kube, namespace, claim, command, node=node, host_dir=image.parent)
