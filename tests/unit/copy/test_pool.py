"""The worker pool: progress, the sum of results, failures and cancels."""

from __future__ import annotations

import threading

import pytest

from csi_vm.copy import model, plan, pool

PIECES = [(i * 10, 10) for i in range(20)]


def _meter(seen: list[tuple[int, int]], total: int) -> model.Meter:
    opts = model.Options(progress=lambda phase, done, tot: seen.append((done, tot)))
    return model.Meter(opts, phase=model.Phase.COPY, total=total)


def test_sums_results_and_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    result = pool.run(
        PIECES, lambda p: p[1] // 2, options=model.Options(workers=3), meter=_meter(seen, 200)
    )
    assert result == 100
    assert seen[0] == (0, 200)
    assert seen[-1] == (200, 200)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_on_queue_sees_every_piece_before_work() -> None:
    queued: list[plan.Extent] = []
    worked: list[plan.Extent] = []

    def work(piece: plan.Extent) -> int:
        assert piece in queued
        worked.append(piece)
        return 0

    pool.run(PIECES, work, options=model.Options(), meter=_meter([], 200), on_queue=queued.append)
    assert sorted(worked) == PIECES == queued


def test_first_failure_is_raised_and_stops_queueing() -> None:
    worked: list[plan.Extent] = []

    def work(piece: plan.Extent) -> int:
        worked.append(piece)
        if piece == PIECES[0]:
            raise OSError(28, "No space left on device")
        return 0

    with pytest.raises(OSError, match="No space"):
        pool.run(PIECES * 50, work, options=model.Options(workers=1), meter=_meter([], 0))
    assert len(worked) < len(PIECES) * 50


def test_cancel_raises_interrupted() -> None:
    cancel = threading.Event()

    def work(piece: plan.Extent) -> int:
        cancel.set()
        return 0

    options = model.Options(workers=1, cancel=cancel)
    with pytest.raises(model.Interrupted):
        pool.run(PIECES * 50, work, options=options, meter=_meter([], 0))
