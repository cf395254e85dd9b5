"""Node agents start, stop and live-migrate the counter guest (real libvirt and qemu, fake API).

See conftest for what is real and what is played. Each test proves what the
guest did by the counter it writes to its disk.
"""

from __future__ import annotations

import pytest

from csi_vm.crd import kinds
from launcher import counter
from tests.support import vmobjects as v

from .conftest import LOCAL_SC, NODE_A, NODE_B, Cluster, vm

pytestmark = [pytest.mark.integration, pytest.mark.vm, pytest.mark.fake, pytest.mark.timeout(180)]

BOOT_S = 60.0


def _counter_passes(cluster: Cluster, name: str, node: str, *, above: int) -> int:
    """Wait until the guest wrote a value above ``above`` on the disk as ``node`` sees it."""
    found: list[int] = []

    def moved() -> bool:
        found.append(counter.read_counter(cluster.disk(name, node)))
        return found[-1] > above

    cluster.wait(f"{name}'s counter above {above}", moved, within=BOOT_S)
    return found[-1]


def _phase(cluster: Cluster, res: kinds.objects.Resource, name: str) -> str:
    return str((cluster.get(res, name).get("status") or {}).get("phase"))


def _start(cluster: Cluster, name: str, *, sc: str = "") -> int:
    cluster.add(vm(name, sc=sc) if sc else vm(name))
    cluster.wait(f"{name} Running", lambda: _phase(cluster, kinds.VM, name) == "Running")
    return _counter_passes(cluster, name, NODE_A, above=3)


def test_vm_starts_when_running_and_stops_when_not(cluster: Cluster) -> None:
    _start(cluster, "life")
    status = cluster.get(kinds.VM, "life")["status"]
    assert status["nodeName"] == NODE_A
    assert cluster.active_on("life") == [NODE_A]
    assert ("Normal", "Started", f"started on {NODE_A} with 1 disk(s)") in cluster.events("life")

    cluster.patch_spec(kinds.VM, "life", {"running": False})
    cluster.wait("life Stopped", lambda: _phase(cluster, kinds.VM, "life") == "Stopped")

    assert cluster.active_on("life") == []
    assert not cluster.conns[NODE_A].exists(f"{v.NS}_life")
    assert "nodeName" not in cluster.get(kinds.VM, "life")["status"]
    assert ("Normal", "Stopped", f"stopped on {NODE_A}") in cluster.events("life")


def test_migration_moves_the_guest_and_the_counter_goes_on(cluster: Cluster) -> None:
    before = _start(cluster, "mover")
    cluster.add(v.migration("m-ok", vm_name="mover", node=NODE_B))

    cluster.wait(
        "m-ok finished",
        lambda: _phase(cluster, kinds.MIGRATION, "m-ok") in ("Succeeded", "Failed"),
        within=120,
    )

    mig = cluster.get(kinds.MIGRATION, "m-ok")["status"]
    print(f"m-ok: {mig.get('message')}")
    assert mig["phase"] == "Succeeded", mig.get("message")
    assert (mig["sourceNode"], mig["targetNode"], mig["strategy"]) == (
        NODE_A, NODE_B, "shared-volume",
    )  # fmt: skip
    assert cluster.get(kinds.VM, "mover")["status"]["nodeName"] == NODE_B
    assert cluster.active_on("mover") == [NODE_B]
    assert not cluster.conns[NODE_A].exists(f"{v.NS}_mover")  # nothing left to start twice
    after = _counter_passes(cluster, "mover", NODE_B, above=before + 3)
    assert after > before
    # The controller lets go of the source node's publication.
    cluster.wait(
        "source holder deleted",
        lambda: (
            not any(
                p["metadata"]["name"] == f"mover-disks-{NODE_A}"
                for p in cluster.objs.list(kinds.POD, namespace=v.NS)[0]
            )
        ),
    )
    reasons = [e[1] for e in cluster.events("m-ok")]
    assert "MigrationStarted" in reasons and "Succeeded" in reasons


def test_storage_migration_copies_the_disk_and_switches_the_claims(cluster: Cluster) -> None:
    before = _start(cluster, "copier", sc=LOCAL_SC)
    cluster.add(v.migration("m-copy", vm_name="copier", node=NODE_B))

    cluster.wait(
        "m-copy finished",
        lambda: _phase(cluster, kinds.MIGRATION, "m-copy") in ("Succeeded", "Failed"),
        within=120,
    )

    mig = cluster.get(kinds.MIGRATION, "m-copy")["status"]
    print(f"m-copy: {mig.get('message')}")
    assert (mig["phase"], mig["strategy"]) == ("Succeeded", "storage-migration"), mig
    assert cluster.active_on("copier") == [NODE_B]
    assert not cluster.conns[NODE_A].exists(f"{v.NS}_copier")
    # The controller switches the VM to the target's claim and retires the source's.
    cluster.wait(
        "claims switched",
        lambda: (
            cluster.get(kinds.VM, "copier")["spec"]["disks"][0].get("claimName") == "m-copy-root"
        ),
    )
    cluster.wait(
        "old claim retired",
        lambda: (
            "copier-root"
            not in {p["metadata"]["name"] for p in cluster.objs.list(kinds.PVC, namespace=v.NS)[0]}
        ),
    )
    after = _counter_passes(cluster, "copier", NODE_B, above=before + 3)
    assert after > before


def test_failed_migration_leaves_the_guest_running_on_the_source(cluster: Cluster) -> None:
    before = _start(cluster, "stayer")
    # node-b's kubelet reports the holder Pod running without publishing its volume.
    cluster.sim.broken.add(NODE_B)
    try:
        cluster.add(v.migration("m-bad", vm_name="stayer", node=NODE_B))
        cluster.wait(
            "m-bad finished",
            lambda: _phase(cluster, kinds.MIGRATION, "m-bad") in ("Succeeded", "Failed"),
            within=120,
        )
    finally:
        cluster.sim.broken.discard(NODE_B)

    mig = cluster.get(kinds.MIGRATION, "m-bad")["status"]
    assert mig["phase"] == "Failed"
    ready = next(c for c in mig["conditions"] if c["type"] == "Ready")
    print(f"m-bad: {ready['message']}")
    assert ready["reason"] == "MigrationFailed"
    assert f"goes on running on {NODE_A}" in ready["message"]
    assert cluster.active_on("stayer") == [NODE_A]
    assert not cluster.conns[NODE_B].exists(f"{v.NS}_stayer")
    assert cluster.get(kinds.VM, "stayer")["status"]["nodeName"] == NODE_A
    _counter_passes(cluster, "stayer", NODE_A, above=before + 3)


def test_migration_left_running_by_a_stopped_agent_is_settled_on_the_source(
    cluster: Cluster,
) -> None:
    before = _start(cluster, "orphan")
    # What an agent that died mid-migration leaves: Running, and libvirt
    # cancelled the job with its client, so the guest is on the source.
    mig = v.migration("m-orphan", vm_name="orphan", node=NODE_B)
    mig["status"] = {
        "phase": "Running", "sourceNode": NODE_A, "targetNode": NODE_B, "strategy": "shared-volume",
    }  # fmt: skip
    cluster.add(mig)

    cluster.wait(
        "m-orphan Failed", lambda: _phase(cluster, kinds.MIGRATION, "m-orphan") == "Failed"
    )

    message = cluster.get(kinds.MIGRATION, "m-orphan")["status"]["message"]
    assert "the node agent stopped during it" in message
    assert cluster.active_on("orphan") == [NODE_A]
    _counter_passes(cluster, "orphan", NODE_A, above=before + 3)


def test_vm_on_an_unknown_node_says_so(cluster: Cluster) -> None:
    cluster.add(vm("lost", node="node-z"))

    def told() -> bool:
        conds = (cluster.get(kinds.VM, "lost").get("status") or {}).get("conditions") or []
        return any(c["type"] == "NodeAssigned" and c["reason"] == "NodeNotFound" for c in conds)

    cluster.wait("NodeNotFound on lost", told)
    assert cluster.active_on("lost") == []
