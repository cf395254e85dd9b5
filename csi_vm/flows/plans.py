"""What an operation will do (or did), per disk: the strategy and why.

Strategies come from the one ladder (`capabilities.ladder`) applied to each
driver's verified report, so `--dry-run`, reports and flows never disagree.
"""

from __future__ import annotations

import dataclasses

from csi_vm.flows import context


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiskPlan:
    disk: str
    driver: str
    strategy: str
    reason: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Plan:
    operation: str
    vm: str
    disks: tuple[DiskPlan, ...]
    detail: str = ""

    def strategy(self, disk: str) -> str:
        return next(d.strategy for d in self.disks if d.disk == disk)

    def as_dict(self) -> dict[str, object]:
        return {
            "operation": self.operation,
            "vm": self.vm,
            "detail": self.detail,
            "disks": [dataclasses.asdict(d) for d in self.disks],
        }


def choose(env: context.Env, *, driver: str, operation: str) -> tuple[str, str]:
    """(strategy, reason) for one operation on one driver."""
    choice = env.plan(driver)[operation]
    return choice.strategy, choice.reason


def disk_plan(env: context.Env, *, disk: str, driver: str, operation: str) -> DiskPlan:
    strategy, reason = choose(env, driver=driver, operation=operation)
    return DiskPlan(disk=disk, driver=driver, strategy=strategy, reason=reason)
