"""The node agent against the fake Kubernetes API server and libvirt's own test driver.

No real API server can run here (see the lab notes): these are fakes, and the
tests that use them are marked ``fake`` and named ``test_fake_api_*``.
libvirt's ``test:///default`` driver is real libvirt, in-process, with no
qemu behind it: domains are defined, started and stopped, nothing boots.
Guests that really boot, and migrations, are in tests/integration/agent.
"""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import pytest

from csi_vm.agent import state
from csi_vm.controller import context
from csi_vm.controller import run as controller_run
from csi_vm.crd import events, kinds
from launcher import libvirt_conn
from tests.support import fakekube
from tests.support import vmobjects as v
from tests.unit.controller.conftest import NOW, ctx, fake  # noqa: F401  (fixtures)

NODE = "n1"
OTHER = "n2"
TEST_URI = "test:///default"


@pytest.fixture
def conn() -> Iterator[libvirt_conn.Connection]:
    with libvirt_conn.Connection.open(TEST_URI) as opened:
        yield opened
        for name in opened.domain_names():
            if name.startswith(v.NS + "_"):  # ours; "test" is the driver's own
                opened.destroy(name)
                opened.undefine(name)


@pytest.fixture
def agent(
    ctx: context.Context,  # noqa: F811
    conn: libvirt_conn.Connection,
    tmp_path: pathlib.Path,
) -> state.Agent:
    return state.Agent(
        node=NODE,
        objs=ctx.objs,
        events=events.Recorder(ctx.objs, clock=lambda: NOW, component=state.COMPONENT),
        conn=conn,
        kubelet_dir=tmp_path / "kubelet",
        state_dir=tmp_path,
        peer_uri=state.peer_uris({}, "test:///{node}"),
        stop_grace_s=0,
    )


def vm_on(name: str, *, node: str = NODE, running: bool = True) -> dict:  # type: ignore[type-arg]
    """A VM whose one disk is a claim of the user's, a filesystem volume (no device needed)."""
    obj = v.vm(name, running=running)
    obj["spec"]["nodeName"] = node
    obj["spec"]["disks"][0]["claimName"] = f"{name}-claim"
    return obj


def fs_claim(name: str) -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": v.NS},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": "1Gi"}},
            "storageClassName": "fast",
        },
    }


def provision(
    fake: fakekube.FakeKube,  # noqa: F811
    ctx: context.Context,  # noqa: F811
    agent: state.Agent,
    name: str,
    *,
    image: bool = True,
) -> pathlib.Path:
    """What the controller, the provisioner and the kubelet do before the agent acts.

    The controller makes the holder Pod; the claim is bound to a volume here,
    and its published directory (with the disk image) made under the kubelet dir.
    """
    claim = f"{name}-claim"
    fake.add(fs_claim(claim))
    controller_run.reconcile(ctx, kinds.VM, read(ctx, kinds.VM, name))
    pv = f"pv-{uuid.uuid4().hex[:8]}"
    pvcs = fake.store.resource("", "v1", "persistentvolumeclaims")
    assert pvcs is not None
    fake.store.patch(pvcs, v.NS, claim, {"spec": {"volumeName": pv}})
    fake.store.patch(pvcs, v.NS, claim, {"status": {"phase": "Bound"}}, subresource="status")
    schedule(fake, f"{name}-disks-{NODE}")
    pod = read(ctx, kinds.POD, f"{name}-disks-{NODE}")
    mount = (
        agent.kubelet_dir / "pods" / pod["metadata"]["uid"] / "volumes" / "kubernetes.io~csi" / pv
    ) / "mount"
    mount.mkdir(parents=True)
    if image:
        (mount / "disk.img").write_bytes(b"\0" * 4096)
    return mount


def schedule(fake: fakekube.FakeKube, pod: str) -> None:  # noqa: F811
    """What the scheduler does with a holder Pod: the node its affinity names."""
    pods = fake.store.resource("", "v1", "pods")
    assert pods is not None
    found = fake.store.get(pods, v.NS, pod)
    terms = found["spec"]["affinity"]["nodeAffinity"]
    field = terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    node = field["matchFields"][0]["values"][0]
    fake.store.patch(pods, v.NS, pod, {"spec": {"nodeName": node}})


def read(ctx: context.Context, res, name: str) -> dict:  # type: ignore[no-untyped-def,type-arg]  # noqa: F811
    return ctx.objs.get(res, name, namespace=v.NS if res.namespaced else "")
