"""Probe many drivers at once, each within its own time limit.

A driver that fails or hangs becomes a row with its error; the matrix itself
never fails because of one driver.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import threading

from capabilities import model, probe

# Time for a probe to clean up after its budget ran out, before its row is
# given up as hung.
_GRACE = 15.0


def run(
    targets: list[probe.Target],
    options: probe.Options,
    *,
    cancel: threading.Event | None = None,
) -> model.MatrixReport:
    cancel = cancel or threading.Event()
    rows: dict[str, model.DriverReport] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(targets)))
    try:
        futures = {t.label: pool.submit(probe.run, t, options, cancel=cancel) for t in targets}
        for target in targets:
            rows[target.label] = _collect(target, futures[target.label], options)
    finally:
        # Never wait for a hung probe thread: its row already says it hung.
        pool.shutdown(wait=False, cancel_futures=True)
    return model.MatrixReport(
        kind="matrix",
        generated_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        rows=[rows[t.label] for t in targets],
    )


def _collect(
    target: probe.Target,
    future: concurrent.futures.Future[model.DriverReport],
    options: probe.Options,
) -> model.DriverReport:
    try:
        return future.result(timeout=options.budget + _GRACE)
    except concurrent.futures.TimeoutError:
        message = f"probe did not finish within {options.budget + _GRACE:.0f} s (driver hung?)"
    except Exception as err:
        message = f"probe crashed: {type(err).__name__}: {err}"
    return model.DriverReport(
        driver=model.DriverInfo(label=target.label, endpoint=target.endpoint),
        mode="declared-only" if options.declared_only else "verified",
        error=message,
    )
