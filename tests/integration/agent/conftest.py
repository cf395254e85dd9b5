"""Two nodes run by node agents, with the controller, against the fake Kubernetes API.

What is real: libvirtd and qemu (TCG) on two libvirt nodes of this machine
(the system one and a second by scripts/libvirt-node), the counter guest,
the local reference CSI driver (two ``--shared`` instances over one state
dir, one per node) publishing real loop devices, and the agent and
controller loops with their list and watch. What is fake, because no API
server can run here: the Kubernetes API (tests/support/fakekube) and the
cluster components around it, played by `Sim`: the external-provisioner
(CreateVolume for each new claim, then Bound), the scheduler (a holder Pod
onto the node its affinity names) and the kubelet (for each
holder Pod on a node: NodeStage and NodePublish of its block volumes at the
kubelet's paths, then the Pod Running; NodeUnpublish when it is deleted).
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
from csi_vm.controller import context, events, kinds, metrics, quantity
from csi_vm.controller import run as controller_run
from csi_vm.csi import client as csi_client
from csi_vm.csi import models, retry
from csi_vm.flows import vmrun
from csi_vm.kube import api as kube_api
from csi_vm.kube import objects
from launcher import domain, libvirt_conn
from tests.support import driverproc, fakekube, libvirtnode
from tests.support import vmobjects as v
from tests.unit.controller.conftest import EXTRA

NODE_A = "node-a"
NODE_B = "node-b"
#: the second libvirt node's name for scripts/libvirt-node
LIBVIRT_NODE_B = "csi-vm-test-agent"
SC = "shared"
QUICK = retry.RetryPolicy(attempts=2, first_delay=0.01, max_delay=0.02)
_BLOCK = models.VolumeCapability(
    mode=models.VolumeMode.BLOCK, access=models.AccessMode.MULTI_NODE_MULTI_WRITER
)
_CSI = "kubernetes.io~csi"
Obj = dict[str, Any]


@dataclasses.dataclass
class _Published:
    node: str
    volume: str
    target: pathlib.Path
    staging: str


class Sim:
    """The external-provisioner and the kubelets of both nodes, polling the fake's store."""

    def __init__(
        self,
        fake: fakekube.FakeKube,
        drivers: dict[str, driverproc.DriverProcess],
        kubelet: pathlib.Path,
    ) -> None:
        self.fake = fake
        self.drivers = drivers
        self.kubelet = kubelet
        #: nodes whose kubelet says a holder Pod runs without publishing its volumes
        self.broken: set[str] = set()
        self.volumes: dict[str, str] = {}  # PV name -> CSI volume id
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
        with self._client(NODE_A) as c:
            for volume in self.volumes.values():
                c.delete_volume(volume)

    def _client(self, node: str) -> csi_client.Client:
        return csi_client.Client(self.drivers[node].endpoint)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self._provision()
                self._kubelet()
            except Exception as err:  # shown by the test that waits in vain
                self.errors.append(err)

    def _provision(self) -> None:
        pvcs, _ = self.fake.store.list_objects(self._res("persistentvolumeclaims"))
        for pvc in pvcs:
            if (pvc.get("status") or {}).get("phase") == "Bound":
                continue
            name = pvc["metadata"]["name"]
            size = quantity.to_bytes(pvc["spec"]["resources"]["requests"]["storage"])
            with self._client(NODE_A) as c:
                vol = c.create_volume(f"pvc-{name}", size=size, capabilities=(_BLOCK,))
            pv = f"pv-{name}"
            self.volumes[pv] = vol.volume_id
            res, ns = self._res("persistentvolumeclaims"), pvc["metadata"]["namespace"]
            self.fake.store.patch(res, ns, name, {"spec": {"volumeName": pv}})
            self.fake.store.patch(
                res, ns, name, {"status": {"phase": "Bound"}}, subresource="status"
            )

    def _kubelet(self) -> None:
        pods, _ = self.fake.store.list_objects(self._res("pods"))
        alive = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            alive.add(uid)
            self._schedule(pod)
            if uid in self.published or pod["spec"].get("nodeName") not in self.drivers:
                continue
            claims = [vol["persistentVolumeClaim"]["claimName"] for vol in pod["spec"]["volumes"]]
            ns = pod["metadata"]["namespace"]
            pvcs = [self.fake.store.get(self._res("persistentvolumeclaims"), ns, c) for c in claims]
            if not all((p.get("status") or {}).get("phase") == "Bound" for p in pvcs):
                continue  # the kubelet waits for its volumes
            node = pod["spec"]["nodeName"]
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
        volume = self.volumes[pv]
        target = self.kubelet / "pods" / uid / "volumeDevices" / _CSI / pv
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = self.kubelet / "plugins" / "staging" / node / pv
        with self._client(node) as c:
            stages = models.NodeCapability.STAGE_UNSTAGE_VOLUME in c.node_capabilities()
            if stages and not staging.exists():
                staging.mkdir(parents=True)
                c.node_stage(volume, staging_path=str(staging), capability=_BLOCK)
            c.node_publish(
                volume, target_path=str(target), capability=_BLOCK,
                staging_path=str(staging) if stages else "",
            )  # fmt: skip
        self.published[uid].append(_Published(node, volume, target, str(staging) if stages else ""))

    def _unpublish(self, uid: str) -> None:
        for done in self.published.pop(uid, []):
            with self._client(done.node) as c:
                c.node_unpublish(done.volume, target_path=str(done.target))

    def _unstage_all(self) -> None:
        for node in self.drivers:
            staged = self.kubelet / "plugins" / "staging" / node
            for path in staged.glob("*") if staged.exists() else ():
                with self._client(node) as c:
                    c.node_unstage(self.volumes[path.name], staging_path=str(path))


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
        return (
            self.kubelet
            / "pods"
            / pod["metadata"]["uid"]
            / "volumeDevices"
            / _CSI
            / f"pv-{vm}-root"
        )

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


def vm(name: str, *, node: str = NODE_A, running: bool = True) -> Obj:
    obj = v.vm(name, sc=SC, running=running, size="64Mi")
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
        NODE_A: driverproc.start_driver(tmp / "a", node_id=NODE_A, shared=True, state_dir=shared),
        NODE_B: driverproc.start_driver(tmp / "b", node_id=NODE_B, shared=True, state_dir=shared),
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
            for drv in drivers.values():
                drv.stop()
            libvirtnode.stop(LIBVIRT_NODE_B)
