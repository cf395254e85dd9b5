"""Two nodes run by node agents, with the controller, against the fake Kubernetes API.

What is real: libvirtd and qemu (TCG) on two libvirt nodes of this machine
(the system one and a second by scripts/libvirt-node), the counter guest,
the local reference CSI driver publishing real loop devices (class
"shared": two ``--shared`` instances over one state dir, one per node;
class "local": one instance per node with its own volumes), and the agent and
controller loops with their list and watch. What is fake, because no API
server can run here: the Kubernetes API (tests/support/fakekube) and the
cluster components around it, played by `Sim`: the scheduler (a holder Pod
onto the node its affinity names), the external-provisioner (CreateVolume
for each claim once a Pod that uses it is scheduled, then Bound) and the
kubelet (for each
holder Pod on a node: NodeStage and NodePublish of its block volumes at the
kubelet's paths, the pod's volumeDevices entry made a symlink to the
published device as a real kubelet makes it, then the Pod Running;
NodeUnpublish when it is deleted).
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from csi_vm import errors
from csi_vm.agent import run as agent_run
from csi_vm.agent import state
from csi_vm.controller import context, metrics
from csi_vm.controller import run as controller_run
from csi_vm.crd import events, kinds
from csi_vm.csi import client as csi_client
from csi_vm.csi import models, retry
from csi_vm.flows import vmrun
from csi_vm.kube import api as kube_api
from csi_vm.kube import objects, quantity
from launcher import domain, libvirt_conn
from tests.support import driverproc, fakekube, libvirtnode
from tests.support import vmobjects as v
from tests.unit.controller.conftest import EXTRA

NODE_A = "node-a"
NODE_B = "node-b"
#: the second libvirt node's name for scripts/libvirt-node
LIBVIRT_NODE_B = "csi-vm-test-agent"
SC = "shared"
#: a class whose volumes live on one node: migrations copy its disks
LOCAL_SC = "local"
QUICK = retry.RetryPolicy(attempts=2, first_delay=0.01, max_delay=0.02)
_CSI = "kubernetes.io~csi"
#: where a kubelet has CSI drivers publish Block claims, under its root dir
_PUBLISH = pathlib.Path("plugins/kubernetes.io/csi/volumeDevices/publish")
Obj = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class _Volume:
    sc: str
    node: str  # whose driver created it
    volume_id: str


@dataclasses.dataclass
class _Published:
    node: str
    volume: _Volume
    target: pathlib.Path  # where the driver published the device
    link: pathlib.Path  # the pod's entry, a symlink to target


class Sim:
    """The scheduler, the provisioner and the kubelets of both nodes, polling the fake's store.

    Claims bind as in a WaitForFirstConsumer class: once a Pod that uses them
    is scheduled, through the driver of that Pod's node.
    """

    def __init__(
        self,
        fake: fakekube.FakeKube,
        drivers: dict[str, dict[str, driverproc.DriverProcess]],
        kubelet: pathlib.Path,
    ) -> None:
        self.fake = fake
        self.drivers = drivers  # storage class -> node -> its driver
        self.kubelet = kubelet
        #: nodes whose kubelet says a holder Pod runs without publishing its volumes
        self.broken: set[str] = set()
        self.volumes: dict[str, _Volume] = {}  # by PV name
        self.published: dict[str, list[_Published]] = {}  # pod uid -> what was published
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sim", daemon=True)
        self.errors: list[BaseException] = []

    def _res(self, plural: str) -> Any:
        res = self.fake.store.resource("", "v1", plural)
        assert res is not None
        return res

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for uid in list(self.published):
            self._unpublish(uid)
        self._unstage_all()
        for vol in self.volumes.values():
            with self._client(vol.sc, vol.node) as c:
                c.delete_volume(vol.volume_id)

    def _client(self, sc: str, node: str) -> csi_client.Client:
        return csi_client.Client(self.drivers[sc][node].endpoint)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self._tick()
            except Exception as err:  # shown by the test that waits in vain
                self.errors.append(err)

    def _tick(self) -> None:
        pods, _ = self.fake.store.list_objects(self._res("pods"))
        for pod in pods:
            self._schedule(pod)
            for claim in _claims(pod):
                self._provision(pod["metadata"]["namespace"], claim, node=pod["spec"]["nodeName"])
        self._kubelet(pods)

    def _provision(self, ns: str, name: str, *, node: str) -> None:
        res = self._res("persistentvolumeclaims")
        pvc = self.fake.store.get(res, ns, name)
        if (pvc.get("status") or {}).get("phase") == "Bound":
            return
        sc = pvc["spec"]["storageClassName"]
        size = quantity.to_bytes(pvc["spec"]["resources"]["requests"]["storage"])
        with self._client(sc, node) as c:
            vol = c.create_volume(f"pvc-{name}", size=size, capabilities=(_capability(sc),))
        pv = f"pv-{name}"
        self.volumes[pv] = _Volume(sc=sc, node=node, volume_id=vol.volume_id)
        self.fake.store.patch(res, ns, name, {"spec": {"volumeName": pv}})
        self.fake.store.patch(res, ns, name, {"status": {"phase": "Bound"}}, subresource="status")

    def _kubelet(self, pods: list[Obj]) -> None:
        alive = set()
        for pod in pods:
            uid, node = pod["metadata"]["uid"], pod["spec"]["nodeName"]
            alive.add(uid)
            if uid in self.published:
                continue
            ns = pod["metadata"]["namespace"]
            res = self._res("persistentvolumeclaims")
            pvcs = [self.fake.store.get(res, ns, c) for c in _claims(pod)]
            self.published[uid] = []
            if node not in self.broken:
                for pvc in pvcs:
                    self._publish(uid, node, pvc["spec"]["volumeName"])
            self.fake.store.patch(
                self._res("pods"), ns, pod["metadata"]["name"], {"status": {"phase": "Running"}},
                subresource="status",
            )  # fmt: skip
        for uid in set(self.published) - alive:
            self._unpublish(uid)

    def _schedule(self, pod: Obj) -> None:
        """The scheduler's part: the node a holder Pod's affinity names."""
        if pod["spec"].get("nodeName"):
            return
        terms = pod["spec"]["affinity"]["nodeAffinity"]
        field = terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        node = field["matchFields"][0]["values"][0]
        spec = {"spec": {"nodeName": node}}
        self.fake.store.patch(
            self._res("pods"), pod["metadata"]["namespace"], pod["metadata"]["name"], spec
        )
        pod["spec"]["nodeName"] = node

    def _publish(self, uid: str, node: str, pv: str) -> None:
        vol = self.volumes[pv]
        target = self.kubelet / _PUBLISH / pv / uid
        target.parent.mkdir(parents=True, exist_ok=True)
        link = self.kubelet / "pods" / uid / "volumeDevices" / _CSI / pv
        staging = self.kubelet / "plugins" / "staging" / node / pv
        cap = _capability(vol.sc)
        with self._client(vol.sc, node) as c:
            stages = models.NodeCapability.STAGE_UNSTAGE_VOLUME in c.node_capabilities()
            if stages and not staging.exists():
                staging.mkdir(parents=True)
                c.node_stage(vol.volume_id, staging_path=str(staging), capability=cap)
            c.node_publish(
                vol.volume_id, target_path=str(target), capability=cap,
                staging_path=str(staging) if stages else "",
            )  # fmt: skip
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        self.published[uid].append(_Published(node, vol, target, link))

    def _unpublish(self, uid: str) -> None:
        for done in self.published.pop(uid, []):
            done.link.unlink(missing_ok=True)
            with self._client(done.volume.sc, done.node) as c:
                c.node_unpublish(done.volume.volume_id, target_path=str(done.target))

    def _unstage_all(self) -> None:
        for node in (NODE_A, NODE_B):
            staged = self.kubelet / "plugins" / "staging" / node
            for path in staged.glob("*") if staged.exists() else ():
                vol = self.volumes[path.name]
                with self._client(vol.sc, node) as c:
                    c.node_unstage(vol.volume_id, staging_path=str(path))


def _claims(pod: Obj) -> list[str]:
    return [vol["persistentVolumeClaim"]["claimName"] for vol in pod["spec"]["volumes"]]


def _capability(sc: str) -> models.VolumeCapability:
    # Node-local volumes are single-node; the shared class's are used by both nodes.
    shared = sc == SC
    access = (
        models.AccessMode.MULTI_NODE_MULTI_WRITER
        if shared
        else models.AccessMode.SINGLE_NODE_WRITER
    )
    return models.VolumeCapability(mode=models.VolumeMode.BLOCK, access=access)


@dataclasses.dataclass
class Cluster:
    fake: fakekube.FakeKube
    objs: objects.Objects
    sim: Sim
    conns: dict[str, libvirt_conn.Connection]
    kubelet: pathlib.Path

    def add(self, *objs: Obj) -> None:
        self.fake.add(*objs)

    def get(self, res: objects.Resource, name: str) -> Obj:
        return self.objs.get(res, name, namespace=v.NS)

    def patch_spec(self, res: objects.Resource, name: str, spec: Obj) -> None:
        self.objs.patch(res, name, {"spec": spec}, namespace=v.NS)

    def wait(self, what: str, check: Callable[[], bool], *, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what}: not within {within} s (sim errors: {self.sim.errors})")

    def disk(self, vm: str, node: str) -> pathlib.Path:
        """Where the VM's root disk is published on ``node``."""
        pod = self.get(kinds.POD, f"{vm}-disks-{node}")
        pod_dir = self.kubelet / "pods" / pod["metadata"]["uid"]
        return pod_dir / "volumeDevices" / _CSI / f"pv-{_claims(pod)[0]}"

    def active_on(self, vm: str) -> list[str]:
        dom = f"{v.NS}_{vm}"
        found = []
        for node, conn in self.conns.items():
            try:
                if conn.status(dom).active:
                    found.append(node)
            except errors.NotFound:  # not defined there
                continue
        return found

    def events(self, name: str) -> list[tuple[str, str, str]]:
        res = self.fake.store.resource("", "v1", "events")
        assert res is not None
        return v.events_about(self.fake.store.list_objects(res)[0], name)


def vm(name: str, *, node: str = NODE_A, running: bool = True, sc: str = SC) -> Obj:
    obj = v.vm(name, sc=sc, running=running, size="64Mi")
    obj["spec"]["nodeName"] = node
    obj["spec"]["memory"] = "128Mi"
    return obj


@pytest.fixture(scope="module")
def boot() -> domain.DirectBoot:
    libvirtnode.require_system().close()
    built = vmrun.counter_guest()
    return domain.DirectBoot(
        kernel=built.kernel.resolve(), initramfs=built.initramfs.resolve(), cmdline=built.cmdline
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, boot: domain.DirectBoot) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("agent")
    uri_b = libvirtnode.start(LIBVIRT_NODE_B)
    shared = tmp / "shared-state"
    drivers = {
        SC: {
            NODE_A: driverproc.start_driver(
                tmp / "a", node_id=NODE_A, shared=True, state_dir=shared
            ),
            NODE_B: driverproc.start_driver(
                tmp / "b", node_id=NODE_B, shared=True, state_dir=shared
            ),
        },
        LOCAL_SC: {
            NODE_A: driverproc.start_driver(tmp / "la", node_id=NODE_A),
            NODE_B: driverproc.start_driver(tmp / "lb", node_id=NODE_B),
        },
    }
    uris = {NODE_A: libvirt_conn.SYSTEM_URI, NODE_B: uri_b}
    kubelet = tmp / "kubelet"
    stop = threading.Event()
    threads: list[threading.Thread] = []
    with pytest.MonkeyPatch.context() as mp, fakekube.running() as fake:
        # Headers and body in separate writes wait out delayed ACKs otherwise.
        mp.setattr(fakekube._Handler, "disable_nagle_algorithm", True)
        for res in EXTRA:
            fake.store.register(res)
        fake.add(v.node(NODE_A), v.node(NODE_B), v.report(SC, v.NATIVE))
        fake.add(v.report(LOCAL_SC, v.BASIC))
        (tmp / "state").mkdir()
        api = kube_api.connect(kubeconfig_file=fake.kubeconfig(tmp / "kubeconfig"), policy=QUICK)
        objs = objects.Objects(api)
        conns = {n: libvirt_conn.Connection.open(u) for n, u in uris.items()}
        sim = Sim(fake, drivers, kubelet)
        ctx = context.Context(
            api=api, objs=objs, events=events.Recorder(objs), metrics=metrics.Metrics(),
            image="csi-vm:test",
        )  # fmt: skip
        controller = controller_run.Controller(ctx=ctx, resync=2)
        for res in (kinds.VM, kinds.MIGRATION):
            threads.append(
                threading.Thread(target=controller.follow, args=(res, stop), daemon=True)
            )
        for node, conn in conns.items():
            agent = state.Agent(
                node=node, objs=objs, conn=conn, kubelet_dir=kubelet, state_dir=tmp / "state",
                events=events.Recorder(objs, component=state.COMPONENT),
                peer_uri=state.peer_uris(uris, "unused://{node}"), boot=boot, stop_grace_s=10,
            )  # fmt: skip
            loop = agent_run.Loop(agent=agent, resync=2)
            threads.append(threading.Thread(target=loop.run, args=(stop,), daemon=True))
        sim.start()
        for thread in threads:
            thread.start()
        try:
            yield Cluster(fake=fake, objs=objs, sim=sim, conns=conns, kubelet=kubelet)
        finally:
            stop.set()
            for conn in conns.values():
                for name in conn.domain_names():
                    if name.startswith(v.NS + "_"):
                        conn.destroy(name)
                        conn.undefine(name)
            for thread in threads:
                thread.join(timeout=10)
            sim.stop()
            for conn in conns.values():
                conn.close()
            api.close()
            for per_node in drivers.values():
                for drv in per_node.values():
                    drv.stop()
            libvirtnode.stop(LIBVIRT_NODE_B)
