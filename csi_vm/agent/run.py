"""The agent loop: list and watch VMs and migrations, and hand each to its step.

With launcher Pods, the node's launcher Pods are followed too: a change of
one is a pass of its VM (`csi_vm.agent.podevents`).

The same pattern as the controller (`csi_vm.kube.informer`): one thread per
resource lists every object, handles it, then follows a watch from the
list's resourceVersion; a watch ends after ``resync`` seconds and the next
round lists again, which picks up what changed without an event on the
object itself (a volume the kubelet published, a guest that crashed). Every
agent handles every object; each step leaves alone what is not its node's.
No leader election: each node has exactly one agent (a DaemonSet).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from csi_vm import errors
from csi_vm.agent import guests, launchers, migrations, online_snapshot, podevents, state
from csi_vm.crd import kinds
from csi_vm.kube import informer, objects

log = logging.getLogger("csi_vm.agent")

Step = Callable[[state.Agent, objects.Json], None]

STEPS: dict[objects.Resource, Step] = {
    kinds.VM: guests.reconcile,
    kinds.MIGRATION: migrations.reconcile,
    kinds.SNAPSHOT: online_snapshot.step,
}
#: what a deleted object needs done on this node
ON_DELETE: dict[objects.Resource, Step] = {kinds.VM: guests.forget}


def handle(agent: state.Agent, res: objects.Resource, obj: objects.Json, *, deleted: bool) -> None:
    """One object through its step; errors are logged, never raised (the next pass retries)."""
    step = ON_DELETE.get(res) if deleted else STEPS[res]
    if step is None:
        return
    try:
        step(agent, obj)
    except errors.CsiVmError as err:
        name = (obj.get("metadata") or {}).get("name")
        log.warning("%s %s on %s: %s", res.plural, name, agent.node, err)


@dataclasses.dataclass(kw_only=True)
class Loop:
    agent: state.Agent
    namespace: str = ""  # "" watches every namespace
    resync: int = 30

    def sync(self, res: objects.Resource) -> str:
        """Handle every object of ``res``; the list's resourceVersion."""
        return informer.sync(
            self.agent.objs, res, namespace=self.namespace, handle=self._handler(res)
        )

    def follow(self, res: objects.Resource, stop: threading.Event) -> None:
        """Sync, then handle each change, until ``stop``; list again after every watch."""
        informer.follow(
            self.agent.objs,
            res,
            namespace=self.namespace,
            resync=self.resync,
            stop=stop,
            handle=self._handler(res),
        )

    def _handler(self, res: objects.Resource) -> informer.Handler:
        def on_event(kind: str, obj: objects.Json) -> None:
            handle(self.agent, res, obj, deleted=kind == "DELETED")

        return on_event

    def follow_pods(self, stop: threading.Event) -> None:
        """Pass each VM whose launcher Pod on this node changed through its step, until ``stop``."""
        informer.follow(
            self.agent.objs,
            kinds.POD,
            namespace=self.namespace,
            resync=self.resync,
            stop=stop,
            handle=self.pod_events(),
            selector=podevents.SELECTOR,
            fields=podevents.fields(self.agent.node),
        )

    def pod_events(self) -> podevents.Handler:
        """What a launcher Pod's change does: its VM through the CsiVM step."""
        return podevents.Handler(self.agent, self._handler(kinds.VM))

    def sweep(self, stop: threading.Event) -> None:
        """Remove launcher run directories left behind, once per ``resync``, until ``stop``."""
        while not stop.wait(self.resync):
            try:
                launchers.sweep(self.agent)
            except errors.CsiVmError as err:
                log.warning("sweeping launcher run directories on %s: %s", self.agent.node, err)

    def run(self, stop: threading.Event) -> None:
        """Follow every resource until ``stop``."""
        workers = [
            threading.Thread(
                target=self.follow, args=(res, stop), name=f"agent-{res.plural}", daemon=True
            )
            for res in STEPS
        ]
        if self.agent.launcher_dir is not None:
            workers.append(
                threading.Thread(target=self.sweep, args=(stop,), name="agent-sweep", daemon=True)
            )
            workers.append(
                threading.Thread(
                    target=self.follow_pods, args=(stop,), name="agent-pods", daemon=True
                )
            )
        for worker in workers:
            worker.start()
        stop.wait()
        for worker in workers:
            worker.join(timeout=self.resync + 5)
