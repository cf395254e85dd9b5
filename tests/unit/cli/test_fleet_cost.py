"""`vm show` and the first page of `vm list` cost the same in a fleet ten times larger.

Counted, not timed: the SQL statements a command runs and the instructions
SQLite's virtual machine executes for them (a progress handler called at
every instruction). A query per VM adds statements; a full-table scan, an
unindexed filter or a sort of the whole table adds instructions.
"""

from __future__ import annotations

import dataclasses
import pathlib
import sqlite3
import sys

import pytest

from csi_vm.cli import vm_cmd
from csi_vm.cli.vmenv import Output
from csi_vm.store import db
from tests.support import fleet

pytestmark = pytest.mark.timeout(120)

SMALL, LARGE = 1_000, 10_000


@dataclasses.dataclass
class Cost:
    statements: list[str] = dataclasses.field(default_factory=list)
    instructions: int = 0
    #: the cost when the command wrote its first output
    at_first_line: tuple[int, int] | None = None

    def step(self) -> int:
        self.instructions += 1
        return 0  # go on

    def now(self) -> tuple[int, int]:
        return len(self.statements), self.instructions


class _Stdout:
    """A pipe that notes the cost so far when the first line is written."""

    def __init__(self, cost: Cost) -> None:
        self.cost = cost
        self.text: list[str] = []

    def write(self, text: str) -> int:
        if self.cost.at_first_line is None and text:
            self.cost.at_first_line = self.cost.now()
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _measure(
    tmp: pathlib.Path, monkeypatch: pytest.MonkeyPatch, *, vms: int, command: str
) -> tuple[Cost, str]:
    path = tmp / f"fleet-{vms}.db"
    seeding = db.Store(path)
    fleet.seed(seeding, count=vms)
    seeding.close()
    config = tmp / "config.yaml"
    config.write_text("drivers: {}\n")
    cost = Cost()
    opened = db.Store._open

    def traced(store: db.Store) -> sqlite3.Connection:
        conn = opened(store)
        conn.set_trace_callback(cost.statements.append)
        conn.set_progress_handler(cost.step, 1)
        return conn

    stdout = _Stdout(cost)
    with monkeypatch.context() as patch:
        patch.setattr(db.Store, "_open", traced)
        patch.setattr(sys, "stdout", stdout)
        patch.delenv("FORCE_COLOR", raising=False)
        patch.delenv("TTY_COMPATIBLE", raising=False)
        patch.setenv("CSI_VM_STATE_DIR", str(tmp / "state"))
        if command == "show":
            vm_cmd.show(fleet.name(vms // 2), Output.TABLE, False, config, path)
        else:
            vm_cmd.list_(Output.TABLE, False, config, path)
    return cost, "".join(stdout.text)


@pytest.mark.parametrize("command", ["show", "list"])
def test_a_command_costs_no_more_in_a_larger_fleet(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    small, small_out = _measure(tmp_path, monkeypatch, vms=SMALL, command=command)
    large, large_out = _measure(tmp_path, monkeypatch, vms=LARGE, command=command)
    # The commands did their work: a row of the middle VM, or every VM.
    expected = 2 if command == "show" else SMALL + 1
    assert len(small_out.splitlines()) == expected
    assert fleet.name(SMALL // 2) in small_out
    assert len(large_out.splitlines()) == (2 if command == "show" else LARGE + 1)
    assert small.at_first_line is not None
    assert large.at_first_line is not None
    statements_small, instructions_small = small.at_first_line
    statements_large, instructions_large = large.at_first_line
    assert statements_large == statements_small, large.statements[:statements_large]
    # A B-tree one level deeper may cost a few instructions more, a scan ten
    # times as many.
    assert instructions_large <= instructions_small * 1.05 + 100, (
        instructions_small,
        instructions_large,
    )
