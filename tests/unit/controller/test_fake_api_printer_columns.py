"""Every printer column of the chart's CRDs reads a field the controller writes (fake API server).

``kubectl get`` shows an empty cell for a jsonPath that matches nothing, so a
column pointing at a misspelt or renamed status field fails silently. Here
the controller makes one object of each kind, on fallback rungs so that the
fallback reason is set too, and each column's path must find a value of
the column's type in it.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from csi_vm.controller import context, run
from csi_vm.crd import kinds
from tests.support import fakekube, kubeobjects
from tests.support import vmobjects as v

pytestmark = [pytest.mark.fake, pytest.mark.timeout(60)]

CRDS = pathlib.Path(__file__).resolve().parents[3] / "charts" / "csi-vm" / "crds"
NS = v.NS
#: The Python type of each printer column type's values (a date is RFC 3339 text).
TYPES = {"string": str, "boolean": bool, "date": str, "integer": int, "number": (int, float)}


def resolve(obj: Any, path: str) -> list[Any]:
    """The values ``path`` finds in ``obj``, as the API server's printer does.

    Only the forms the CRDs use: ``.a.b`` and ``[*]``. A missing key drops
    that branch (the server allows missing keys), so ``disks[*].resize``
    finds the disks that have one.
    """
    found = [obj]
    for step in path.removeprefix(".").replace("[*]", ".[*]").split("."):
        if step == "[*]":
            found = [item for value in found if isinstance(value, list) for item in value]
        else:
            found = [value[step] for value in found if isinstance(value, dict) and step in value]
    return found


def _columns(kind: str) -> list[dict[str, Any]]:
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            return list(crd["spec"]["versions"][0]["additionalPrinterColumns"])
    raise AssertionError(f"no CRD of kind {kind}")


def _get(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    return ctx.objs.get(res, name, namespace=NS if res.namespaced else "")


def _pass(ctx: context.Context, res: Any, name: str) -> dict[str, Any]:
    run.reconcile(ctx, res, _get(ctx, res, name))
    return _get(ctx, res, name)


def _job_done(fake: fakekube.FakeKube, name: str) -> None:
    res = fake.store.resource("batch", "v1", "jobs")
    assert res is not None
    fake.store.patch(res, NS, name, {"status": {"succeeded": 1}}, subresource="status")


def _written(fake: fakekube.FakeKube, ctx: context.Context) -> dict[str, dict[str, Any]]:
    """One object of each kind as the controller leaves it, by kind."""
    fake.add(*kubeobjects.typical_cluster(), v.report("fast", v.BASIC), v.node("n2"))
    fake.add(v.vm("web"), v.vm("db", running=True), v.snapshot("s1", vm_name="web"))
    fake.add(v.clone("c1", source="web", target="web2"))
    fake.add(v.migration("m1", vm_name="db", node="n2"))
    _pass(ctx, kinds.VM, "web")
    grown = [{"name": "root", "size": "2Gi", "storageClassName": "fast"}]
    ctx.objs.patch(kinds.VM, "web", {"spec": {"disks": grown}}, namespace=NS)
    _pass(ctx, kinds.VM, "db")
    _pass(ctx, kinds.VM, "web")  # the copy into a larger claim is decided
    _pass(ctx, kinds.VM, "web")  # and started
    # Where a VM runs, and with what, is the node agent's to write
    # (csi_vm.agent.guests, csi_vm.agent.launchers).
    vms = fake.store.resource(kinds.GROUP, kinds.VERSION, kinds.VM.plural)
    assert vms is not None
    ran = {"nodeName": "n1", "acceleration": {"mode": "tcg", "reason": "no /dev/kvm"}}
    fake.store.patch(vms, NS, "web", {"status": ran}, subresource="status")
    written = {
        "CsiVM": _get(ctx, kinds.VM, "web"),
        "CsiVMSnapshot": _pass(ctx, kinds.SNAPSHOT, "s1"),
        "CsiVMClone": _pass(ctx, kinds.CLONE, "c1"),
        "CsiVMMigration": _pass(ctx, kinds.MIGRATION, "m1"),
    }
    _job_done(fake, "s1-root-copy")
    _pass(ctx, kinds.SNAPSHOT, "s1")
    fake.add(v.restore("r1", snapshot_name="s1", target="web3"))
    written["CsiVMRestore"] = _pass(ctx, kinds.RESTORE, "r1")
    run.reconcile(ctx, kinds.STORAGE_CLASS, ctx.objs.get(kinds.STORAGE_CLASS, "gp3"))
    written["StorageCapabilityReport"] = ctx.objs.get(kinds.REPORT, "gp3")
    return written


def test_every_column_finds_a_value_of_its_type(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    written = _written(fake, ctx)
    assert set(written) == set(kinds.KIND.values())
    for kind, obj in written.items():
        for column in _columns(kind):
            values = resolve(obj, column["jsonPath"])
            where = f"{kind} column {column['name']} ({column['jsonPath']})"
            assert values, f"{where} finds nothing in {obj.get('status')}"
            assert isinstance(values[0], TYPES[column["type"]]), f"{where}: {values[0]!r}"


@pytest.mark.parametrize("kind", ["CsiVMSnapshot", "CsiVMRestore", "CsiVMClone", "CsiVMMigration"])
def test_each_operation_shows_phase_strategy_fallback_reason_and_age(kind: str) -> None:
    paths = {c["jsonPath"] for c in _columns(kind)}
    for field in ("phase", "strategy", "fallback", "fallbackReason"):
        assert f".status.{field}" in paths, kind
    assert ".metadata.creationTimestamp" in paths


def test_the_fallback_column_tells_native_from_fallback(
    fake: fakekube.FakeKube, ctx: context.Context
) -> None:
    fake.add(v.report("fast", v.NATIVE), v.vm("web"), v.snapshot("s1", vm_name="web"))
    status = _pass(ctx, kinds.SNAPSHOT, "s1")
    assert resolve(status, ".status.fallback") == [False]
    assert resolve(status, ".status.fallbackReason") == []  # an empty cell


def test_resolve_skips_list_items_without_the_key() -> None:
    obj = {"status": {"disks": [{"name": "a"}, {"name": "b", "resize": {"phase": "Copying"}}]}}
    assert resolve(obj, ".status.disks[*].resize.phase") == ["Copying"]
    assert resolve(obj, ".status.nodeName") == []
