"""What every flow needs: config, store, CSI clients, the node it runs on, the plans."""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from csi_vm import config, errors
from csi_vm.store import db, records

if TYPE_CHECKING:
    from capabilities import model
    from csi_vm.csi import client as csi_client

# The capability and CSI models (pydantic) are imported where a flow first
# needs a driver, as gRPC is: commands that only read the store (vm list) are
# spared pydantic's import, about a third of their start-up.

#: progress(what, done_bytes, total_bytes)
Progress = Callable[[str, int, int], None]


def _no_progress(what: str, done: int, total: int) -> None:
    return None


@dataclasses.dataclass(kw_only=True)
class Env:
    cfg: config.Config
    store: db.Store
    state_dir: pathlib.Path
    progress: Progress = _no_progress
    _clients: dict[tuple[str, str], csi_client.Client] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _reports: dict[str, model.DriverReport] = dataclasses.field(default_factory=dict)

    @property
    def node(self) -> str:
        return self.cfg.node

    def driver(self, name: str) -> config.DriverConfig:
        drv = self.cfg.drivers.get(name)
        if drv is None:
            known = ", ".join(sorted(self.cfg.drivers)) or "none"
            raise errors.InvalidInput(
                f"no driver named {name!r} in the config", hint=f"configured: {known}"
            )
        return drv

    def controller(self, driver: str) -> csi_client.Client:
        drv = self.driver(driver)
        return self._client(drv.endpoint, drv, driver)

    def node_service(self, driver: str, *, node: str = "") -> csi_client.Client:
        """The driver's node service on a node (default: this machine, for host copies)."""
        drv = self.driver(driver)
        endpoint = drv.nodes.get(node or self.node, drv.endpoint)
        return self._client(endpoint, drv, driver)

    def _client(self, endpoint: str, drv: config.DriverConfig, name: str) -> csi_client.Client:
        # One client per driver and endpoint: two drivers behind one endpoint
        # may carry different secrets.
        # gRPC and the probe are imported where a flow first talks to a
        # driver: commands that only read the store start without them.
        from csi_vm.csi import client as csi_client  # noqa: PLC0415
        from csi_vm.csi import models  # noqa: PLC0415

        key = (endpoint, name)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = csi_client.Client(
                    endpoint, timeout=drv.timeout, secrets=models.Secrets(drv.secret_values())
                )
                self._clients[key] = client
            return client

    def report(self, driver: str, *, refresh: bool = False) -> model.DriverReport:
        """The driver's verified capability report, probed once and kept in the store."""
        from capabilities import model  # noqa: PLC0415 - see the imports

        if not refresh and driver in self._reports:
            return self._reports[driver]
        cached = None if refresh else records.cached_caps(self.store, driver)
        if cached is not None:
            report = model.DriverReport.model_validate_json(cached)
            self._reports[driver] = report
            return report
        from capabilities import probe  # noqa: PLC0415 - see _client
        from csi_vm.csi import models  # noqa: PLC0415 - see the imports

        drv = self.driver(driver)
        target = probe.Target(
            label=driver,
            endpoint=drv.endpoint,
            nodes={self.node: drv.nodes.get(self.node, drv.endpoint)},
            asserted=frozenset(model.Feature(f) for f in drv.asserted),
            timeout=drv.timeout,
            modify_parameters=dict(drv.modify_parameters),
            secrets=models.Secrets(drv.secret_values()),
        )
        options = probe.Options(
            journal_dir=self.state_dir / "probe-journals", work_dir=self.state_dir / "probe-work"
        )
        report = probe.run(target, options)
        if report.error:
            raise errors.Unreachable(f"cannot probe driver {driver!r}: {report.error}")
        records.save_caps(self.store, driver, report.model_dump_json(by_alias=True))
        self._reports[driver] = report
        return report

    def plan(self, driver: str) -> dict[str, model.Choice]:
        # Made anew from the kept report: `assert:` in the config may have
        # changed since the probe.
        from capabilities import ladder  # noqa: PLC0415 - see the imports

        return ladder.plan(
            self.report(driver).features, trust_declared=False, asserted=self._asserted(driver)
        )

    def works(self, driver: str, feature: model.Feature) -> bool:
        """Verified, and declared or asserted: what the plan itself would rely on."""
        from capabilities import ladder  # noqa: PLC0415 - see the imports

        features = self.report(driver).features
        return ladder.usable(feature, features, asserted=self._asserted(driver))

    def may_call(self, driver: str, feature: model.Feature) -> bool:
        """False for a feature the driver serves but does not declare, unless asserted.

        Anything else is tried as the driver answers (an unoffered RPC answers
        UNIMPLEMENTED, which the caller handles). Only a report already at
        hand counts: an undo or a resume never probes a driver for this.
        """
        from capabilities import model  # noqa: PLC0415 - see the imports

        known = self._reports.get(driver)
        if known is None and (cached := records.cached_caps(self.store, driver)):
            known = model.DriverReport.model_validate_json(cached)
        result = known.features.get(feature) if known else None
        undeclared = result is not None and result.undeclared
        return not undeclared or feature in self._asserted(driver)

    def _asserted(self, driver: str) -> frozenset[model.Feature]:
        from capabilities import model  # noqa: PLC0415 - see the imports

        return frozenset(model.Feature(f) for f in self.driver(driver).asserted)

    def attach_dir(self, flow_id: str, seq: int) -> pathlib.Path:
        return self.state_dir / "attach" / flow_id / str(seq)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self.store.close()
