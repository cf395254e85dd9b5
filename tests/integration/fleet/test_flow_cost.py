"""A VM's create and snapshot flows cost the store the same in a fleet ten times larger.

Counted, not timed (see tests/unit/cli/test_fleet_cost.py): the SQL
statements the flow runs and the SQLite instructions they take, on the local
driver, for one VM in a store of 1,000 and of 10,000 VMs.
"""

from __future__ import annotations

import pathlib
import sqlite3

import pytest
import yaml

from csi_vm import config, spec
from csi_vm.flows import context, snapshots, vms
from csi_vm.store import db
from tests.support import driverproc, fleet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MIB = 1024 * 1024


class _Counter:
    def __init__(self) -> None:
        self.statements = 0
        self.instructions = 0

    def statement(self, _sql: str) -> None:
        self.statements += 1

    def step(self) -> int:
        self.instructions += 1
        return 0  # go on


def _flow_costs(
    tmp: pathlib.Path, endpoint: str, monkeypatch: pytest.MonkeyPatch, *, vms_count: int
) -> dict[str, tuple[int, int]]:
    tmp.mkdir()
    cfg_file = tmp / "config.yaml"
    cfg_file.write_text(yaml.safe_dump({"drivers": {"local": {"endpoint": endpoint}}}))
    counter = _Counter()
    opened = db.Store._open

    def traced(store: db.Store) -> sqlite3.Connection:
        conn = opened(store)
        conn.set_trace_callback(counter.statement)
        conn.set_progress_handler(counter.step, 1)
        return conn

    monkeypatch.setattr(db.Store, "_open", traced)
    store = db.Store(tmp / "csi-vm.db")
    fleet.seed(store, count=vms_count)
    env = context.Env(cfg=config.load(cfg_file), store=store, state_dir=tmp / "state")
    disks = [{"name": d, "size": MIB, "driver": "local", "mode": "block"} for d in fleet.DISKS]
    costs = {}
    try:
        # The first flow probes the driver and caches its report: not counted.
        vms.create(env, spec.VMSpec.model_validate({"name": "warm-up", "disks": disks}))
        for name, run in [
            (
                "create",
                lambda: vms.create(
                    env, spec.VMSpec.model_validate({"name": "measured", "disks": disks})
                ),
            ),
            ("snapshot", lambda: snapshots.create(env, vm_name="measured", name="measured-1")),
        ]:
            before = (counter.statements, counter.instructions)
            run()
            costs[name] = (counter.statements - before[0], counter.instructions - before[1])
    finally:
        env.close()
    return costs


def test_flows_cost_the_store_no_more_in_a_larger_fleet(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drv = driverproc.start_driver(tmp_path / "driver")
    try:
        small = _flow_costs(tmp_path / "small", drv.endpoint, monkeypatch, vms_count=1_000)
        large = _flow_costs(tmp_path / "large", drv.endpoint, monkeypatch, vms_count=10_000)
    finally:
        drv.stop()
    for flow in ("create", "snapshot"):
        (statements_small, instructions_small), (statements_large, instructions_large) = (
            small[flow],
            large[flow],
        )
        assert statements_small > 5  # the flow was counted
        assert statements_large == statements_small, flow
        assert instructions_large <= instructions_small * 1.05 + 100, (flow, small, large)
